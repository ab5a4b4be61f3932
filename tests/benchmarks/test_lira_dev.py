"""benchmarks/lira_dev.py: the development set of the per-example attack holds none of the audit's members."""
from types import SimpleNamespace

import pytest

import lira_dev
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.audit.sets import audit_sets
from i2i_unlearn.lineage import training_data_config
from i2i_unlearn.models import load_model


def test_the_development_members_are_forget_images_the_audit_does_not_attack_and_are_seeded(tiny_model_dir):
    model = load_model(tiny_model_dir)
    spec = SimpleNamespace(forget_classes=["Cat"], seed=0, max_images=50)
    members, total, attacked = lira_dev.development_members(model, spec)
    audit = audit_sets(training_data_config(model), forget_classes=["Cat"], max_images=50, seed=0).members
    every = audit_sets(training_data_config(model), forget_classes=["Cat"], max_images=None, seed=0).members
    assert (total, attacked) == (len(every), 50) and len(members) == min(50, total - 50)
    assert not set(members.ids) & set(audit.ids) and set(members.ids) <= set(every.ids)
    assert {members.class_names[i] for i in members.labels.tolist()} == {"Cat"}
    again, _, _ = lira_dev.development_members(model, spec)
    assert again.ids == members.ids
    # an audit that attacks every forget image leaves no development set
    with pytest.raises(UserError, match="no development set is left"):
        lira_dev.development_members(model, SimpleNamespace(forget_classes=["Cat"], seed=0, max_images=total))
