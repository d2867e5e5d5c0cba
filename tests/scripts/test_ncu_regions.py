#!/usr/bin/python3
"""scripts/ncu_regions.py on a small source page in ncu's CSV form: regions end at BAR instructions, counts are
divided by --per, opcodes lose predicates and modifiers, a missing column is a one-line error naming it."""
import os
import subprocess
import sys
import tempfile

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "ncu_regions.py")

PAGE = '''"# Address","Source","Warp Stall Sampling (All Samples)","Warp Stall Sampling (Not-issued Samples)","Instructions Executed","Thread Instructions Executed"
"0x00","IMAD.MOV.U32 R1, RZ, RZ, c[0x0][0x28]","4","2","400","12800"
"0x10","@P0 LDS.128 R4, [R2]","6","5","1,200","38400"
"0x20","BAR.SYNC.DEFER_BLOCKING 0x0","10","10","400","12800"
"0x30","HMMA.16816.F32.BF16 R8, R12, R16, R8","3","1","800","25600"
"0x40","IMAD R2, R3, R4, R5","1","0","400","12800"
"0x50","EXIT","0","0","400","12800"
'''


def run(page, *args):
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        f.write(page)
    try:
        return subprocess.run([sys.executable, SCRIPT, f.name, *args], capture_output=True, text=True)
    finally:
        os.unlink(f.name)


def main():
    r = run("==PROF== ncu banner line\n" + PAGE, "--per", "4")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2, lines
    first, second = lines
    # region 0..2 (ends at the barrier): (400 + 1200 + 400) / 4 = 500 per item, 20 samples, LDS (predicated) 300
    assert first.split()[:2] == ["0-", "2"] and "instr/head     500.0" in first and "samples       20" in first, first
    assert "LDS:300" in first and "IMAD:100" in first and "BAR:100" in first, first
    # the last region ends at the last instruction: (800 + 400 + 400) / 4 = 400
    assert second.split()[:2] == ["3-", "5"] and "instr/head     400.0" in second and "HMMA:200" in second, second

    broken = PAGE.replace("Instructions Executed\",\"Thread", "Executed Count\",\"Thread")
    r = run(broken, "--per", "4")
    assert r.returncode != 0 and "no column 'Instructions Executed'" in r.stderr, (r.returncode, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr

    r = run(PAGE, "--per", "0")
    assert r.returncode != 0 and "--per" in r.stderr, r.stderr
    print("ncu_regions: ok")


if __name__ == "__main__":
    main()
