package plancmd

import (
	"fmt"

	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/machineos"
	"github.com/imagemode/imagemode/render/containerruntime"
	"github.com/imagemode/imagemode/render/machineconfig"
)

// Change is what would be applied: objects to create or replace (as `kubectl apply` would), or, with Delete,
// objects to remove.
type Change struct {
	Documents []Document
	Delete    bool
}

// Apply returns the snapshot as it is after the change; s is not modified. A replaced object keeps what the
// server and the controllers own (uid, creation time, status, annotations the document does not set, a
// pool's spec.configuration), as `kubectl apply` keeps them. Documents that do not validate, and removals of
// objects that do not exist, are errors naming the document and field.
func (c Change) Apply(s *State) (*State, error) {
	next := s.clone()
	for _, d := range c.Documents {
		if err := validateDocument(d); err != nil && !c.Delete {
			return nil, err
		}
		var err error
		if c.Delete {
			err = next.remove(d)
		} else {
			err = next.put(merged(next, d))
		}
		if err != nil {
			return nil, err
		}
	}
	return next, nil
}

// validateDocument checks what the controllers would reject in one object on its own.
func validateDocument(d Document) error {
	switch o := d.Object.(type) {
	case *mcfgv1.MachineConfig:
		if errs := machineconfig.ValidateMachineConfig(o); len(errs) > 0 {
			return docError(d, "%v", errs.ToAggregate())
		}
	case *mcfgv1.MachineOSConfig:
		if o.Spec.MachineConfigPool.Name == "" {
			return docError(d, "spec.machineConfigPool.name: Required value")
		}
		if _, err := machineos.BuildPushSpec(string(o.Spec.RenderedImagePushSpec), o.Name+"-0"); err != nil {
			return docError(d, "spec.renderedImagePushSpec: %v", err)
		}
	case *mcfgv1.MachineConfigPool:
		if o.Spec.MachineConfigSelector == nil {
			return docError(d, "spec.machineConfigSelector: Required value")
		}
	}
	return nil
}

// merged is the document's object as the server would store it over the existing one.
func merged(s *State, d Document) Document {
	var existing client.Object
	switch o := d.Object.(type) {
	case *mcfgv1.MachineConfig:
		if old := find(s.Configs, o.Name); old != nil {
			existing = old
		}
	case *mcfgv1.MachineConfigPool:
		if old := find(s.Pools, o.Name); old != nil {
			existing = old
			o = o.DeepCopy()
			o.Spec.Configuration = old.Spec.Configuration
			o.Status = old.Status
			d.Object = o
		}
	case *mcfgv1.MachineOSConfig:
		if old := find(s.MOSCs, o.Name); old != nil {
			existing = old
			o = o.DeepCopy()
			o.Status = old.Status
			d.Object = o
		}
	case *operatorv1alpha1.ImageContentSourcePolicy:
		if old := find(s.ICSPs, o.Name); old != nil {
			existing = old
		}
	case *configv1.ImageDigestMirrorSet:
		if old := find(s.IDMSs, o.Name); old != nil {
			existing = old
		}
	case *configv1.ImageTagMirrorSet:
		if old := find(s.ITMSs, o.Name); old != nil {
			existing = old
		}
	case *configv1.Image:
		if s.Image != nil && s.Image.Name == o.Name {
			existing = s.Image
		}
	}
	if existing == nil {
		return d
	}
	obj := d.Object.DeepCopyObject().(client.Object)
	obj.SetUID(existing.GetUID())
	obj.SetCreationTimestamp(existing.GetCreationTimestamp())
	obj.SetResourceVersion(existing.GetResourceVersion())
	obj.SetGeneration(existing.GetGeneration())
	obj.SetOwnerReferences(existing.GetOwnerReferences())
	if old := existing.GetAnnotations(); len(old) > 0 {
		ann := map[string]string{}
		for k, v := range old {
			ann[k] = v
		}
		for k, v := range obj.GetAnnotations() {
			ann[k] = v
		}
		obj.SetAnnotations(ann)
	}
	d.Object = obj
	return d
}

// remove takes a document's object out of the snapshot.
func (s *State) remove(d Document) error {
	name := d.Object.GetName()
	var found bool
	switch d.Object.(type) {
	case *mcfgv1.MachineConfigPool:
		s.Pools, found = without(s.Pools, name)
	case *mcfgv1.MachineConfig:
		s.Configs, found = without(s.Configs, name)
	case *mcfgv1.MachineOSConfig:
		s.MOSCs, found = without(s.MOSCs, name)
	case *operatorv1alpha1.ImageContentSourcePolicy:
		s.ICSPs, found = without(s.ICSPs, name)
	case *configv1.ImageDigestMirrorSet:
		s.IDMSs, found = without(s.IDMSs, name)
	case *configv1.ImageTagMirrorSet:
		s.ITMSs, found = without(s.ITMSs, name)
	case *configv1.Image:
		found = s.Image != nil && s.Image.Name == name
		if found {
			s.Image = nil
		}
	default:
		return docError(d, "kind: cannot be removed by a plan")
	}
	if !found {
		return docError(d, "--delete: %s %s does not exist", d.Kind(), name)
	}
	return nil
}

// registriesError turns the registries validation errors of a change into an error naming the document
// they blame when the change holds it.
func registriesError(c Change, invalid *containerruntime.InvalidInputsError) error {
	resources := map[string]string{KindICSP: "imagecontentsourcepolicies", KindIDMS: "imagedigestmirrorsets",
		KindITMS: "imagetagmirrorsets", KindImage: "images"}
	for _, o := range containerruntime.Offenders(invalid.Errs) {
		for _, d := range c.Documents {
			if resources[d.Kind()] == o.Resource && d.Object.GetName() == o.Name {
				return docError(d, "%v", o.Errs.ToAggregate())
			}
		}
	}
	return fmt.Errorf("the registry configuration after the change is invalid: %v", invalid.Errs.ToAggregate())
}
