package simhost

import (
	"os"
	"reflect"
	"testing"
)

func TestParseAdminStatus(t *testing.T) {
	recorded, err := os.ReadFile("testdata/ostree-admin-status.txt") // ostree 2022.7, a sysroot not booted
	if err != nil {
		t.Fatal(err)
	}
	const a = "076fd29cc5f327cd10dbaa7a31785cc544c6a22607c78eb8b01ad85fd2b67ecd"
	const b = "5d0c216fe2227aeef80cc2dfffad9070f90adce6ce820699365f37623a63dff8"
	tests := []struct {
		name string
		in   string
		want []ostreeDeployment
	}{
		{name: "recorded", in: string(recorded), want: []ostreeDeployment{
			{Name: a + ".0", OSName: "rhcos", Checksum: a, Serial: 0, Index: 0},
			{Name: b + ".0", OSName: "rhcos", Checksum: b, Serial: 0, Index: 1},
		}},
		{name: "booted host with markers", in: "  rhcos " + a + ".2 (staged)\n    Version: 2\n* rhcos " + b + ".1\n    origin refspec: b\n  rhcos " + a + ".0 (rollback)\n", want: []ostreeDeployment{
			{Name: a + ".2", OSName: "rhcos", Checksum: a, Serial: 2, Index: 0},
			{Name: b + ".1", OSName: "rhcos", Checksum: b, Serial: 1, Index: 1},
			{Name: a + ".0", OSName: "rhcos", Checksum: a, Serial: 0, Index: 2},
		}},
		{name: "no deployments", in: "No deployments.\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAdminStatus([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseBootEntry(t *testing.T) {
	recorded, err := os.ReadFile("testdata/ostree-1-rhcos.conf") // written by ostree admin deploy
	if err != nil {
		t.Fatal(err)
	}
	e, err := parseBootEntry("ostree-1-rhcos.conf", recorded)
	if err != nil {
		t.Fatal(err)
	}
	want := bootEntry{File: "ostree-1-rhcos.conf", Title: "rhcos 9.6.1 (ostree:1)", Version: 1,
		Options: []string{"rw", `foo="a b"`, "ostree=/ostree/boot.0/rhcos/e7489082567465fa8ea209f037898be87e9f1fc8f1aa68f150fc9b569309e73a/1"},
		Linux:   "/ostree/rhcos-e7489082567465fa8ea209f037898be87e9f1fc8f1aa68f150fc9b569309e73a/vmlinuz-5.14.0",
		Initrd:  "/ostree/rhcos-e7489082567465fa8ea209f037898be87e9f1fc8f1aa68f150fc9b569309e73a/initramfs-5.14.0.img"}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("got %+v\nwant %+v", e, want)
	}
	d := ostreeDeployment{Kargs: e.Options}
	if got := d.userKargs(); !reflect.DeepEqual(got, []string{"rw", `foo="a b"`}) {
		t.Errorf("userKargs %q", got)
	}
	for _, bad := range []string{"version x\n", "options foo=\"a\n"} {
		if _, err := parseBootEntry("bad.conf", []byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestKeyFile(t *testing.T) {
	const origin = "[origin]\ncontainer-image-reference=ostree-unverified-registry:q/os@sha256:aa\n\n# comment\n[packages]\nrequested=usbguard;kernel-rt-core;\n"
	kf, err := parseKeyFile([]byte(origin))
	if err != nil {
		t.Fatal(err)
	}
	if got := kf.get("origin", "container-image-reference"); got != "ostree-unverified-registry:q/os@sha256:aa" {
		t.Errorf("image reference %q", got)
	}
	if got := list(kf.get("packages", "requested")); !reflect.DeepEqual(got, []string{"usbguard", "kernel-rt-core"}) {
		t.Errorf("packages %q", got)
	}
	c := kf.clone()
	c.set("packages", "requested", "")
	c.set(stagedGroup, stagedKey, "true")
	c.set("origin", "container-image-reference", "ostree-unverified-registry:q/os@sha256:bb")
	want := "[origin]\ncontainer-image-reference=ostree-unverified-registry:q/os@sha256:bb\n\n[imagemode]\nstaged=true\n"
	if got := string(c.bytes()); got != want {
		t.Errorf("edited origin:\n%s\nwant\n%s", got, want)
	}
	if kf.get("packages", "requested") == "" {
		t.Error("editing the clone changed the original")
	}
	if joinList(nil) != "" || joinList([]string{"a", "b"}) != "a;b;" {
		t.Error("joinList")
	}
	if _, err := parseKeyFile([]byte("key=outside\n")); err == nil {
		t.Error("a key outside a group parsed")
	}
	if got := unquoteGVariant(`'sha256:abc'`); got != "sha256:abc" {
		t.Errorf("unquoteGVariant %q", got)
	}
}
