import subprocess
import sys

import pytest

from vj.errors import VJError
from vj.models import imagenet


def test_table_order_and_known_indices():
    names = imagenet.class_names()
    assert len(names) == 1000
    assert names[0] == "tench"
    assert names[1] == "goldfish"
    assert names[107] == "jellyfish"
    assert names[985] == "daisy"
    assert names[207] == "golden retriever"
    assert imagenet.synset(107) == "n01910747"
    # ILSVRC-2012 order is synsets sorted by WordNet id
    synsets = [imagenet.synset(i) for i in range(1000)]
    assert synsets == sorted(synsets) and len(set(synsets)) == 1000


def test_synonyms():
    assert imagenet.synonyms(1) == ["goldfish", "Carassius auratus"]
    assert imagenet.synonyms(0)[0] == "tench"
    with pytest.raises(VJError):
        imagenet.synonyms(1000)
    with pytest.raises(VJError):
        imagenet.synonyms(-1)


def test_resolve_names_and_indices():
    assert imagenet.resolve_classes(["daisy", "jellyfish", "golden retriever"]) == [985, 107, 207]
    assert imagenet.resolve_classes(["DAISY", "Golden_Retriever", " jellyfish "]) == [985, 207, 107]
    assert imagenet.resolve_classes([0, "999", 107]) == [0, 999, 107]
    assert imagenet.resolve_classes(["Carassius auratus"]) == [1]  # any synonym
    assert imagenet.resolve_classes(["jelly"]) == [107]  # unique partial name
    # "tiger" is a whole synonym of class 292 and a word in tiger shark, tiger cat, tiger beetle...
    assert imagenet.resolve_classes(["tiger"]) == [292]
    assert imagenet.class_names()[292] == "tiger"


def test_resolve_errors():
    with pytest.raises(VJError, match=r"unknown class 'jellyfsh'; closest: jellyfish \(107\)"):
        imagenet.resolve_classes(["jellyfsh"])
    with pytest.raises(VJError, match="out of range"):
        imagenet.resolve_classes([1000])
    with pytest.raises(VJError, match="out of range"):
        imagenet.resolve_classes(["-3"])
    with pytest.raises(VJError, match="ambiguous"):
        imagenet.resolve_classes(["retriever"])
    with pytest.raises(VJError, match=r"crane \(134\), crane \(517\)"):
        imagenet.resolve_classes(["crane"])  # two classes share the primary name
    with pytest.raises(VJError):
        imagenet.resolve_classes([""])
    with pytest.raises(VJError):
        imagenet.resolve_classes([2.5])


def test_search():
    hits = imagenet.search("retriever")
    assert [i for i, _ in hits] == [205, 206, 207, 208, 209]
    assert imagenet.search("107") == [(107, ["jellyfish"])]
    fish = [i for i, _ in imagenet.search("FISH")]
    assert 1 in fish and 107 in fish
    assert imagenet.search("qwertyuiop") == []


def _vj(*args):
    return subprocess.run([sys.executable, "-m", "vj", "classes", *args], capture_output=True, text=True)


def test_cli_classes():
    out = _vj("daisy")
    assert out.returncode == 0 and out.stdout == "985  daisy\n"
    out = _vj("jellyfish", "goldfish")
    assert out.returncode == 0
    assert out.stdout.splitlines() == ["  1  goldfish, Carassius auratus", "107  jellyfish"]
    out = _vj("jellyfsh")
    assert out.returncode != 0 and "jellyfish (107)" in out.stderr and out.stderr.count("\n") == 1
    out = _vj("--all")
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and len(lines) == 1000 and lines[985] == "985  daisy"
    assert _vj().returncode != 0
