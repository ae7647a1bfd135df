"""Pictures of the embeddings (``analysis.embeddings``): the labels that colour them come from the task, and the
figures draw the planes of the key frequencies."""

from groklab import RunConfig
from groklab.analysis import embeddings


def test_s5_labels_cosets_and_cycle_types():
    lab = embeddings.labels(RunConfig(task="s5_mul"))
    cosets, types = lab["coset of S4 (sigma(4))"], lab["cycle type"]
    assert sorted(set(cosets)) == [0, 1, 2, 3, 4] and all(cosets.count(c) == 24 for c in range(5))
    assert types[0] == "1+1+1+1+1" and types.count("2+1+1+1") == 10 and types.count("5") == 24


def test_other_tasks_colour_residues_or_elements():
    assert embeddings.labels(RunConfig(task="add", modulus=7)) == {"residue": list(range(7))}
    d4 = embeddings.labels(RunConfig(task="group", group="D4", model="mlp"))  # coloured by conjugacy class
    assert list(d4) == ["conjugacy class"] and len(set(d4["conjugacy class"])) == 5
    assert not embeddings.EMBEDDINGS.applies(RunConfig(task="digits", model="mlp"))
