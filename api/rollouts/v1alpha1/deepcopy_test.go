package v1alpha1

import (
	"reflect"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/randfill"
)

// TestDeepCopy fills every field at random: a copy is equal and shares no pointer, slice or map with the
// original (a hand-written deepcopy that forgets a field fails here).
func TestDeepCopy(t *testing.T) {
	f := randfill.NewWithSeed(1).NilChance(0).NumElements(1, 3)
	for i := 0; i < 50; i++ {
		var in RolloutPolicy
		f.Fill(&in)
		out := in.DeepCopy()
		if !equality.Semantic.DeepEqual(&in, out) {
			t.Fatalf("copy differs:\n%#v\n%#v", in, *out)
		}
		if p := shared(reflect.ValueOf(in), reflect.ValueOf(*out), "RolloutPolicy"); p != "" {
			t.Fatalf("the copy shares %s with the original", p)
		}
		list := RolloutPolicyList{Items: []RolloutPolicy{in}}
		if lc := list.DeepCopy(); shared(reflect.ValueOf(list), reflect.ValueOf(*lc), "List") != "" {
			t.Fatal("the list copy shares memory")
		}
	}
}

// shared returns the path of the first pointer, slice or map that a and b share.
func shared(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		return shared(a.Elem(), b.Elem(), path)
	case reflect.Slice:
		if a.Len() == 0 {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		for i := 0; i < a.Len(); i++ {
			if p := shared(a.Index(i), b.Index(i), path+"[]"); p != "" {
				return p
			}
		}
	case reflect.Map:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			return path
		}
	case reflect.Struct:
		if a.Type() == reflect.TypeOf(time.Time{}) {
			return "" // its *Location is shared by design
		}
		for i := 0; i < a.NumField(); i++ {
			if p := shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
				return p
			}
		}
	}
	return ""
}
