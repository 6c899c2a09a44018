package controlplane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// configureForKubelets makes the API server able to reach real kubelets: by their node's InternalIP (node
// names do not resolve here), authenticating with a client certificate of a CA made for it, written to
// KubeletClientCAFile for the kubelets to trust. It also makes the API server what pods expect (see
// serveInCluster). Called before the API server starts.
func (cp *ControlPlane) configureForKubelets() error {
	dir := filepath.Join(cp.WorkDir, "kubelet-client")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating kubelet client certificate directory: %w", err)
	}
	ca, cert, key, err := writeKubeletClientCert(dir)
	if err != nil {
		return err
	}
	cp.KubeletClientCAFile = ca
	args := cp.env.ControlPlane.GetAPIServer().Configure()
	args.Set("kubelet-preferred-address-types", "InternalIP", "Hostname")
	args.Set("kubelet-client-certificate", cert)
	args.Set("kubelet-client-key", key)
	cp.serveInCluster()
	return nil
}

// serveInCluster makes the API server reachable from (host-network) pods as client-go's in-cluster
// configuration reaches it, with no kube-proxy: pods are given KUBERNETES_SERVICE_HOST, the ClusterIP of
// the "kubernetes" Service (the first address of --service-cluster-ip-range), and port 443. So the service
// range is a /24 of the loopback network, picked at random (127.a.b.0/24, one per control plane), and the
// API server listens at its first address on port 443: a host-network pod reaches it directly, and the
// serving certificate envtest makes for the listen address is valid for that name. It also re-enables the
// ServiceAccount admission plugin envtest turns off: it gives pods their token volume (kube-api-access-*),
// which a kubelet fills through the TokenRequest API.
func (cp *ControlPlane) serveInCluster() {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	prefix := fmt.Sprintf("127.%d.%d", 1+int(b[0])%254, b[1])
	api := cp.env.ControlPlane.GetAPIServer()
	api.SecureServing.Address = prefix + ".1"
	api.SecureServing.Port = "443"
	args := api.Configure()
	args.Set("service-cluster-ip-range", prefix+".0/24")
	args.Disable("disable-admission-plugins")
	args.Set("enable-admission-plugins", "ServiceAccount")
}

// writeKubeletClientCert writes a self-signed CA and a client certificate it signed (CN
// kube-apiserver-kubelet-client) into dir, and returns the CA, certificate and key paths.
func writeKubeletClientCert(dir string) (caPath, certPath, keyPath string, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", fmt.Errorf("generating kubelet client CA key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "imagemode-kubelet-client-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", "", fmt.Errorf("creating kubelet client CA: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", "", "", fmt.Errorf("parsing kubelet client CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", fmt.Errorf("generating kubelet client key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return "", "", "", fmt.Errorf("creating kubelet client certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", "", fmt.Errorf("encoding kubelet client key: %w", err)
	}
	caPath, certPath, keyPath = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	for _, f := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{
		{caPath, "CERTIFICATE", caDER, 0o644},
		{certPath, "CERTIFICATE", der, 0o644},
		{keyPath, "EC PRIVATE KEY", keyDER, 0o600},
	} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), f.mode); err != nil {
			return "", "", "", fmt.Errorf("writing %s: %w", f.path, err)
		}
	}
	return caPath, certPath, keyPath, nil
}
