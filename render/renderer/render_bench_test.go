package renderer

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/machineconfig"
)

// benchPool returns 100 MachineConfigs of 50 files each (every other file gzip-compressed, paths
// overlapping between configs so the merge replaces entries) and 20 units spread over them.
func benchPool() []*mcfgv1.MachineConfig {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bytes.Repeat([]byte("compressed content line\n"), 40))
	zw.Close()
	gzURL := "data:;base64," + base64.StdEncoding.EncodeToString(gz.Bytes())
	out := make([]*mcfgv1.MachineConfig, 0, 100)
	for c := 0; c < 100; c++ {
		var files []any
		for f := 0; f < 50; f++ {
			file := map[string]any{"path": fmt.Sprintf("/etc/bench/dir%d/file%d.conf", f%10, (c*7+f)%120), "mode": 420}
			if f%2 == 0 {
				file["contents"] = map[string]any{"source": gzURL, "compression": "gzip"}
			} else {
				file["contents"] = map[string]any{"source": fmt.Sprintf("data:,config%%20%d%%20file%%20%d", c, f)}
			}
			files = append(files, file)
		}
		ign := map[string]any{"ignition": map[string]any{"version": "3.4.0"}, "storage": map[string]any{"files": files}}
		if c%5 == 0 {
			ign["systemd"] = map[string]any{"units": []any{
				map[string]any{"name": fmt.Sprintf("bench-%d.service", c), "enabled": true, "contents": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target"},
				map[string]any{"name": fmt.Sprintf("bench-%d-b.service", c), "contents": "[Service]\nExecStart=/bin/false"},
			}}
		}
		raw, _ := json.Marshal(ign)
		out = append(out, &mcfgv1.MachineConfig{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%02d-bench", c), Labels: map[string]string{wellknown.RoleLabel: "worker"}},
			Spec:       mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: raw}, KernelArguments: []string{"a=1"}},
		})
	}
	return out
}

// BenchmarkRenderPool renders the 100×50 pool (select, validate, merge, name, size check), reporting each
// variant's cost relative to a baseline measured in the same run: only decoding the same configs' Ignition
// JSON. Variants: cold (nothing cached: every config parsed and validated), warm (the controller's parse
// cache holds every config, as when an unrelated event triggers a render), one-changed (one config has a
// new resourceVersion: the usual render after a user edits a config). Target: under 50 ms per render.
func BenchmarkRenderPool(b *testing.B) {
	configs := benchPool()
	for i, mc := range configs {
		mc.UID = types.UID(fmt.Sprintf("uid-%d", i))
		mc.ResourceVersion = "1"
	}
	baseline := decodeBaseline(configs)
	in := Inputs{Pool: pool("worker", roleSelector("worker")), Configs: configs, ControllerConfig: controllerConfig(), Version: "bench"}
	run := func(b *testing.B, prepare func(i int) *machineconfig.ParseCache) {
		b.ReportAllocs()
		var elapsed time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			in.Cache = prepare(i)
			b.StartTimer()
			start := time.Now()
			if out := Render(in); out.Failure != nil {
				b.Fatal(out.Failure.Message)
			}
			elapsed += time.Since(start)
		}
		perRender := elapsed / time.Duration(b.N)
		b.ReportMetric(float64(perRender.Microseconds())/1000, "ms/render")
		b.ReportMetric(float64(perRender)/float64(baseline), "x-json-decode")
	}
	b.Run("cold", func(b *testing.B) {
		run(b, func(int) *machineconfig.ParseCache { return nil })
	})
	warm := machineconfig.NewParseCache()
	Render(Inputs{Pool: in.Pool, Configs: configs, ControllerConfig: in.ControllerConfig, Cache: warm})
	b.Run("warm", func(b *testing.B) {
		run(b, func(int) *machineconfig.ParseCache { return warm })
	})
	b.Run("one-changed", func(b *testing.B) {
		run(b, func(i int) *machineconfig.ParseCache {
			configs[42].ResourceVersion = fmt.Sprint(i + 2)
			return warm
		})
	})
}

// decodeBaseline is the time to json-decode every config's Ignition once (the median of 5 runs).
func decodeBaseline(configs []*mcfgv1.MachineConfig) time.Duration {
	var runs []time.Duration
	for r := 0; r < 5; r++ {
		start := time.Now()
		for _, mc := range configs {
			var cfg ign3types.Config
			if err := json.Unmarshal(mc.Spec.Config.Raw, &cfg); err != nil {
				panic(err)
			}
		}
		runs = append(runs, time.Since(start))
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i] < runs[j] })
	return runs[2]
}
