package podrunner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
)

// errVolumeNotReady says a volume's ConfigMap or Secret does not exist yet; like a kubelet, the runner waits.
var errVolumeNotReady = errors.New("volume source not found yet")

// materialize writes every volume of pod into dir/<volume name>.
func (r *Runner) materialize(ctx context.Context, pod *corev1.Pod, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, v := range pod.Spec.Volumes {
		target := filepath.Join(dir, v.Name)
		var err error
		switch {
		case v.ConfigMap != nil:
			err = r.writeConfigMap(ctx, pod.Namespace, v.ConfigMap, target)
		case v.Secret != nil:
			err = r.writeSecret(ctx, pod.Namespace, v.Secret, target)
		case v.EmptyDir != nil:
			err = os.MkdirAll(target, 0o777)
		case v.HostPath != nil:
			err = r.linkHostPath(v.HostPath, target)
		default:
			err = fmt.Errorf("volume %q: this runner supports configMap, secret, emptyDir and hostPath volumes", v.Name)
		}
		if err != nil {
			return fmt.Errorf("preparing volume %q: %w", v.Name, err)
		}
	}
	return nil
}

func (r *Runner) writeConfigMap(ctx context.Context, ns string, src *corev1.ConfigMapVolumeSource, target string) error {
	cm := &corev1.ConfigMap{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: src.Name}, cm); err != nil {
		if apierrors.IsNotFound(err) && (src.Optional == nil || !*src.Optional) {
			return fmt.Errorf("configmap %s: %w", src.Name, errVolumeNotReady)
		}
		if apierrors.IsNotFound(err) {
			return os.MkdirAll(target, 0o755)
		}
		return err
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return writeKeys(target, data, src.Items, src.DefaultMode)
}

func (r *Runner) writeSecret(ctx context.Context, ns string, src *corev1.SecretVolumeSource, target string) error {
	s := &corev1.Secret{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: src.SecretName}, s); err != nil {
		if apierrors.IsNotFound(err) && (src.Optional == nil || !*src.Optional) {
			return fmt.Errorf("secret %s: %w", src.SecretName, errVolumeNotReady)
		}
		if apierrors.IsNotFound(err) {
			return os.MkdirAll(target, 0o700)
		}
		return err
	}
	return writeKeys(target, s.Data, src.Items, src.DefaultMode)
}

// writeKeys writes keys (or the selected items) as files, as the kubelet's projection does.
func writeKeys(target string, data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32) error {
	mode := os.FileMode(0o644)
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode)
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	type file struct {
		path string
		mode os.FileMode
	}
	files := map[string]file{}
	if len(items) == 0 {
		for k := range data {
			files[k] = file{k, mode}
		}
	}
	for _, it := range items {
		if _, ok := data[it.Key]; !ok {
			return fmt.Errorf("key %q not found", it.Key)
		}
		m := mode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		files[it.Key] = file{it.Path, m}
	}
	for key, f := range files {
		p := filepath.Join(target, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data[key], f.mode); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) linkHostPath(src *corev1.HostPathVolumeSource, target string) error {
	host := filepath.Join(r.Opts.HostPathRoot, filepath.Clean("/"+src.Path))
	if src.Type == nil || *src.Type == corev1.HostPathDirectoryOrCreate || *src.Type == corev1.HostPathUnset {
		if err := os.MkdirAll(host, 0o755); err != nil {
			return err
		}
	}
	if _, err := os.Stat(host); err != nil {
		return fmt.Errorf("host path %s: %w", src.Path, err)
	}
	// A pod whose ConfigMap or Secret was not there yet is prepared again: its link is already made.
	if dest, err := os.Readlink(target); err == nil && dest == host {
		return nil
	}
	return os.Symlink(host, target)
}
