"""On target: the model firmware, run in QEMU, returns exactly the host reference's logits.

Cortex-M4 (mps2-an386), Cortex-M0+ code (microbit) and RV32IMAC (virt) run a subset of the
held-out images; the instruction counters are cross-checked against each other on RV32. The
firmware is the PlatformIO project examples/digits_vit/firmware: ``firmware.build`` runs
``pio run`` on it, and its ``pio test`` compares every logit with the reference.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from cbuild import require_tool
from exactness import assert_equal

from lutcodegen.firmware.build import pio_environment
from lutcodegen.model import demo, digits, example, firmware, intref

pytest.importorskip("sklearn", reason="the digits data set comes with scikit-learn")

#: Images per board: every 9th held-out image, 40 in all (all ten classes).
SUBSET = slice(0, None, 9)


def _require(board_name: str) -> firmware.Board:
    board = firmware.BOARDS[board_name]
    for tool in firmware.tools_for(board):
        require_tool(tool)
    if not firmware.platformio_available():
        pytest.skip("PlatformIO not installed (pip install -e '.[firmware]')")
    return board


def _build(
    board_name: str, tmp_path: Path, cmsis_nn: bool = False
) -> tuple[firmware.Build, np.ndarray]:
    board = _require(board_name)
    images = digits.load().test_images[SUBSET]
    options = firmware.cmsis_nn_options(board) if cmsis_nn else {}
    return firmware.build(example.quantized("lut"), images, board, tmp_path, **options), images


#: Each board with the portable kernels, and the Cortex-M0+ and M4 with CMSIS-NN's matrix
#: product too (its DSP code on the M4, its plain C on the M0+).
BUILDS = [
    ("an386", False),
    ("microbit", False),
    ("virt_rv32", False),
    ("an386", True),
    ("microbit", True),
]


@pytest.mark.firmware
@pytest.mark.parametrize(
    ("board_name", "cmsis_nn"), BUILDS, ids=[f"{b}{'-cmsis-nn' * c}" for b, c in BUILDS]
)
def test_firmware_logits_equal_host_reference(
    board_name: str, cmsis_nn: bool, tmp_path: Path
) -> None:
    built, images = _build(board_name, tmp_path, cmsis_nn)
    symbols = subprocess.run(
        [built.board.cc.replace("-gcc", "-nm"), str(built.elf)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ("arm_nn_mat_mult_nt_t_s8" in symbols) == cmsis_nn
    result = firmware.run(built, len(images))
    expected = intref.run(example.quantized("lut"), images)
    assert len(images) == 40
    assert_equal(result.logits, expected)
    assert_equal(result.classes, intref.predict(expected))
    assert built.model_static_ram == 0  # all working memory is the caller's scratch
    assert built.model_flash < 64 * 1024
    assert built.scratch + built.stack_worst < 16 * 1024


@pytest.mark.firmware
@pytest.mark.slow
def test_instruction_counters_and_profile_agree_on_rv32(tmp_path: Path) -> None:
    """minstret (under -icount) and the execution trace count the same inference, and the
    profile's functions split exactly that count.

    The counters differ only by the marker calls and CSR reads around the call (a handful of
    instructions), so a broken counter, or one counting something else, is caught; every
    traced instruction is attributed to exactly one function.
    """
    built, images = _build("virt_rv32", tmp_path)
    minstret = firmware.run(built, len(images)).insns[0]
    run = firmware.trace_runs(built, 1)[0]
    executed = run.addresses
    traced = sum(executed.values())
    # The parts split the same count: the linear layers with their products, the attention
    # (products, softmax and copies), the LayerNorms, and model_run's own inlined kernels.
    assert sum(run.parts.values()) == traced
    assert next(iter(run.parts.most_common()))[0] == "dvit_linear_s8"
    assert {"dvit_attention_s8", "dvit_layer_norm_s8", "dvit_model_run"} <= set(run.parts)
    assert run.parts["(markers)"] < 20
    assert traced > 100_000
    assert 0 <= minstret - traced <= 8, (minstret, traced)
    prof = firmware.profile(built, executed)
    assert prof.total == traced
    assert sum(prof.functions.values()) == traced
    assert next(iter(prof.functions)) == "dvit_mat_mult_s8"  # the largest part
    assert {"dvit_model_run", "dvit_attention_s8", "dvit_layer_norm_s8"} <= set(prof.functions)
    softmax = prof.inlined[("dvit_attention_s8", "dvit_attn_softmax_s8")]
    assert 0 < softmax < prof.functions["dvit_attention_s8"]
    for (function, _), count in prof.inlined.items():
        assert count <= prof.functions[function]
    table = firmware.format_profile(prof, "rv32")
    assert table.endswith(f"| total | {traced:,} | 100.0 % | |")


def test_profile_attribution() -> None:
    """Addresses go to the symbol at or last before them; aliases share one name; inlined
    parts are split off inside their function; an address before every symbol is refused."""
    starts, names = [0x100, 0x200, 0x300], ["run", "__aeabi_lmul=__muldi3", "main"]
    executed = Counter({0x100: 5, 0x104: 7, 0x1FE: 1, 0x200: 30, 0x2FF: 2, 0x300: 4})
    prof = firmware.attribute(executed, starts, names, {0x104: "softmax", 0x1FE: "softmax"})
    assert prof.total == 49 == sum(prof.functions.values())
    assert prof.functions == {"__aeabi_lmul=__muldi3": 32, "run": 13, "main": 4}
    assert list(prof.functions) == ["__aeabi_lmul=__muldi3", "run", "main"]
    assert prof.inlined == {("run", "softmax"): 8}
    table = firmware.format_profile(prof, "title")
    assert "| `run` | 13 | 26.5 % | `softmax` 8 (16.3 %) |" in table
    with pytest.raises(firmware.FirmwareError, match="before every function symbol"):
        firmware.attribute(Counter({0x10: 1}), starts, names, {})


def test_worst_stack_path(tmp_path: Path) -> None:
    """The deepest path is summed, not all frames; built-in helpers are skipped; cycles fail."""
    graph = tmp_path / "m.ci"
    graph.write_text(
        'graph: { title: "m.c"\n'
        'node: { title: "leaf" label: "leaf\\nm.c:1:1\\n40 bytes (static)" }\n'
        'node: { title: "mid" label: "mid\\nm.c:2:1\\n16 bytes (static)" }\n'
        'node: { title: "big" label: "big\\nm.c:3:1\\n48 bytes (static)" }\n'
        'node: { title: "__aeabi_lmul" label: "__aeabi_lmul\\n<built-in>" shape : ellipse }\n'
        'node: { title: "run" label: "run\\nm.c:4:1\\n8 bytes (static)" }\n'
        'edge: { sourcename: "mid" targetname: "leaf" label: "m.c:2:5" }\n'
        'edge: { sourcename: "big" targetname: "__aeabi_lmul" }\n'
        'edge: { sourcename: "run" targetname: "mid" label: "m.c:4:5" }\n'
        'edge: { sourcename: "run" targetname: "big" label: "m.c:4:9" }\n'
        "}\n"
    )
    assert firmware.worst_stack(graph, "run") == 8 + 16 + 40
    cycle = 'edge: { sourcename: "leaf" targetname: "run" label: "m.c:1:5" }\n}\n'
    graph.write_text(graph.read_text()[: -len("}\n")] + cycle)
    with pytest.raises(firmware.FirmwareError, match="recursion"):
        firmware.worst_stack(graph, "run")


@pytest.mark.firmware
def test_extra_sources_include_dirs_and_defines_reach_the_build(tmp_path: Path) -> None:
    """An extra source is compiled into the firmware without -Werror (its warnings would fail
    the model's build), with the include folders and defines given; the model still runs."""
    board = _require("virt_rv32")
    extra = tmp_path / "extra"
    (extra / "include").mkdir(parents=True)
    (extra / "include" / "extra_value.h").write_text(
        "#ifndef EXTRA_VALUE\n#error EXTRA_VALUE not defined\n#endif\n"
    )
    source = extra / "extra_answer.c"
    source.write_text(
        '#include "extra_value.h"\n'
        "int extra_answer(int unused) { int spare; return EXTRA_VALUE + EXTRA_FLAG; }\n"
    )
    images = digits.load().test_images[:3]
    qm = example.quantized("lut")
    built = firmware.build(
        qm,
        images,
        board,
        tmp_path / "build",
        extra_sources=[source],
        include_dirs=[extra / "include"],
        defines=["EXTRA_VALUE=40", "EXTRA_FLAG=2"],
    )
    manifest = json.loads((tmp_path / "build" / firmware.EXTRAS_JSON).read_text())
    assert manifest["sources"] == [str(source.resolve())]
    objects = list((built.elf.parent / "model_extra").glob("*.o"))
    assert [o.name for o in objects] == ["0_extra_answer.o"]
    nm = board.cc.replace("-gcc", "-nm")
    assert (
        "extra_answer"
        in subprocess.run([nm, str(objects[0])], capture_output=True, text=True, check=True).stdout
    )
    assert_equal(firmware.run(built, len(images)).logits, intref.run(qm, images))
    # The same warning in the model's own build is an error: -Werror is relaxed for extras only.
    source.write_text(source.read_text() + "#include <model.h>\n")
    model = tmp_path / "build" / "model.c"
    model.write_text(model.read_text() + "\nint dvit_extra_warning(int unused) { return 0; }\n")
    with pytest.raises(firmware.FirmwareError, match="unused"):
        firmware.pio_run(firmware.PROJECT_DIR, "virt_rv32", tmp_path / "build", tmp_path / "pio")


def _pio_test(model_dir: Path, build_dir: Path) -> subprocess.CompletedProcess[str]:
    environment = pio_environment(firmware.PROJECT_DIR)
    environment["LUTCODEGEN_MODEL_DIR"] = str(model_dir)
    environment["PLATFORMIO_BUILD_DIR"] = str(build_dir)
    command = [sys.executable, "-m", "platformio", "test", "-d", str(firmware.PROJECT_DIR)]
    done = subprocess.run(
        [*command, "-e", "virt_rv32"], env=environment, capture_output=True, text=True, timeout=600
    )
    # One text, without the colours: a failing run prints its summary on stderr.
    done.stdout = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
    return done


@pytest.mark.firmware
def test_pio_test_compares_every_logit(tmp_path: Path) -> None:
    """``pio test`` passes one case per image on a model folder with reference logits, and
    fails, naming the image, when one reference logit is off by one."""
    _require("virt_rv32")
    qm = example.quantized("lut")
    images = digits.load().test_images[:12]
    expected = intref.run(qm, images)
    firmware.write_folder(qm, images, tmp_path / "model", expected=expected)
    done = _pio_test(tmp_path / "model", tmp_path / "pio")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "12 test cases: 12 succeeded" in done.stdout
    expected[5, 3] += 1
    firmware.write_folder(qm, images, tmp_path / "model", expected=expected)
    done = _pio_test(tmp_path / "model", tmp_path / "pio")
    assert done.returncode != 0
    assert "image 5" in done.stdout and "11 succeeded" in done.stdout, done.stdout[-4000:]


def test_model_folder_is_checked(tmp_path: Path) -> None:
    """A model folder without the model, or with a broken or dangling ``firmware.json``, is
    refused with a message (the extra script prints it and fails the build)."""
    with pytest.raises(firmware.FirmwareError, match="lacks model.c, model.h, images.h"):
        firmware.read_folder(tmp_path)
    for name in ("model.c", "model.h", "images.h"):
        (tmp_path / name).write_text("")
    assert firmware.read_folder(tmp_path) == firmware.Extras()
    (tmp_path / firmware.EXTRAS_JSON).write_text("[1, 2]")
    with pytest.raises(firmware.FirmwareError, match="not a valid extras file"):
        firmware.read_folder(tmp_path)
    (tmp_path / firmware.EXTRAS_JSON).write_text(json.dumps({"sources": ["/no/such/file.c"]}))
    with pytest.raises(firmware.FirmwareError, match="/no/such/file.c"):
        firmware.read_folder(tmp_path)


def test_demo_exits_2_without_the_firmware_project(monkeypatch, capsys) -> None:
    """Outside a checkout the demo says what it needs, before any work: exit 2, no traceback."""
    monkeypatch.setattr(firmware, "find_project", lambda: None)
    monkeypatch.setattr(firmware, "tools_for", lambda board: [])
    assert demo.main(["--boards", "virt_rv32"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "model firmware project" in captured.err and "source checkout" in captured.err
    assert "Traceback" not in captured.err
