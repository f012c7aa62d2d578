"""tools/generate_hr_file.py: the demo file byte for byte, any count, unique ids, duplicate names on request, a valid
manager hierarchy, determinism, and --realistic's awkward names."""
import csv
import io
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "generate_hr_file.py"
if str(TOOL.parent) not in sys.path:
    sys.path.insert(0, str(TOOL.parent))

import generate_hr_file as hr  # noqa: E402


def cli(tmp_path, *arguments, timeout=120):
    """The tool's own command line (a timeout turns a generator that never finishes into a failure)."""
    output = tmp_path / "hr.csv"
    subprocess.run([sys.executable, str(TOOL), "--output", str(output)] + list(arguments), check=True,
                   timeout=timeout)
    with open(str(output), encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def full_names(people):
    return [(p["FirstName"], p["LastName"]) for p in people]


def duplicate_share(people):
    return 1 - len(set(full_names(people))) / len(people)


@pytest.fixture(scope="module")
def big_realistic(tmp_path_factory):
    return cli(tmp_path_factory.mktemp("hr"), "--count", "10000", "--seed", "7", "--duplicate-names", "0.3",
               "--realistic")


# The bundled demo file is the generator's 300 people plus one new hire who shares an existing person's full name
# (the demo shows the unique-name rule giving him alan.martin2@...).
DEMO_NAMESAKE = b"100300,Alan,Martin,Sales,Account Executive,100004,Lisbon,PT,Active\n"


def test_count_300_seed_42_is_the_bundled_demo_file(tmp_path):
    cli(tmp_path, "--count", "300", "--seed", "42")
    bundled = (ROOT / "playbooks" / "files" / "hr_people.csv").read_bytes()
    assert (tmp_path / "hr.csv").read_bytes() + DEMO_NAMESAKE == bundled
    assert b"100001,Alan,Martin," in bundled


@pytest.mark.parametrize("count", [0, 1, 2, 300])
def test_exact_count_unique_ids_and_unique_names_by_default(count):
    people = hr.generate(count, seed=3)
    assert len(people) == count
    assert len(set(p["EmployeeID"] for p in people)) == count
    assert len(set(full_names(people))) == count


def test_counts_beyond_the_demo_name_pairs_finish_with_unique_names(tmp_path):
    people = cli(tmp_path, "--count", "30000", "--seed", "3", timeout=60)      # 63 x 43 demo name pairs
    assert len(people) == 30000
    assert len(set(p["EmployeeID"] for p in people)) == len(set(full_names(people))) == 30000


def test_the_requested_share_of_people_share_a_name(big_realistic):
    assert len(big_realistic) == 10000
    assert len(set(p["EmployeeID"] for p in big_realistic)) == 10000
    assert abs(duplicate_share(big_realistic) - 0.3) < 0.02
    assert abs(duplicate_share(hr.generate(5000, seed=1, duplicate_names=0.1)) - 0.1) < 0.02


@pytest.mark.parametrize("options", [{}, {"duplicate_names": 0.3, "realistic": True}])
def test_every_manager_exists_and_every_chain_reaches_the_ceo(options):
    people = hr.generate(10000, seed=5, **options)
    manager_of = dict((p["EmployeeID"], p["ManagerID"]) for p in people)
    assert [p["EmployeeID"] for p in people if not p["ManagerID"]] == ["100000"]
    assert all(manager in manager_of for manager in manager_of.values() if manager)
    for employee in manager_of:
        seen = set()
        while manager_of[employee]:
            assert employee not in seen, "a management cycle through %s" % employee
            seen.add(employee)
            employee = manager_of[employee]
        assert employee == "100000"


def test_the_same_seed_gives_the_same_people_and_another_seed_others():
    options = {"duplicate_names": 0.2, "realistic": True}
    assert hr.generate(3000, seed=11, **options) == hr.generate(3000, seed=11, **options)
    assert hr.generate(3000, seed=11, **options) != hr.generate(3000, seed=12, **options)


def scripts(people):
    letters = set(ch for first, last in full_names(people) for ch in first + last if ch.isalpha())
    return set(unicodedata.name(ch).split()[0] for ch in letters)


def test_realistic_names_are_awkward_in_every_way(big_realistic):
    names = [first + " " + last for first, last in full_names(big_realistic)]
    assert {"LATIN", "CJK", "GREEK", "CYRILLIC"} <= scripts(big_realistic)
    assert any(not name.isascii() and "LATIN" in unicodedata.name(name[0]) for name in names)   # Zoë, Åsa...
    assert any(re.search(r"\b[OD]'[A-Z]", name) for name in names)                             # O'Brien
    assert any(re.search(r"\w-\w", last) for _, last in full_names(big_realistic))             # double-barrelled
    assert max(len(name) for name in names) > 64
    assert max(len(part) for pair in full_names(big_realistic) for part in pair) <= 64       # Entra's field limit


def test_plain_names_stay_in_the_demo_style():
    assert scripts(hr.generate(20000, seed=9)) == {"LATIN"}
    assert max(len(" ".join(pair)) for pair in full_names(hr.generate(20000, seed=9))) <= 64


def test_write_matches_the_demo_csv_dialect():
    stream = io.StringIO()
    hr.write(hr.generate(3, seed=42), stream)
    assert stream.getvalue().splitlines()[0] == ",".join(hr.FIELDS) and "\r" not in stream.getvalue()


def test_a_duplicate_share_of_one_or_more_is_refused(tmp_path):
    with pytest.raises(subprocess.CalledProcessError):
        cli(tmp_path, "--duplicate-names", "1")
