import pytest

from trt_tui.core.errors import UserError
from trt_tui.core.fileio import atomic_write


def test_atomic_write_never_clobbers(tmp_path):
    p = tmp_path / "sub" / "a.toml"
    atomic_write(p, "one")
    with pytest.raises(UserError, match="already exists"):
        atomic_write(p, "two")
    assert p.read_text() == "one"
    atomic_write(p, "three", overwrite=True)
    assert p.read_text() == "three"
    assert [x.name for x in p.parent.iterdir()] == ["a.toml"]  # no temp files left behind
