# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Generate an HR export like the bundled demo file (playbooks/files/hr_people.csv), deterministically per seed.

`--count 300 --seed 42` reproduces the demo file byte for byte. Any count works (100,000 rows in about a second):
names stay unique by widening the name pool when it fills up (more names, then double-barrelled surnames).
`--duplicate-names 0.3` gives that share of people a full name someone else already has, as real companies do;
`--realistic` mixes in accents, apostrophes, double-barrelled surnames, Chinese, Greek and Cyrillic names and one
full name longer than 64 characters. Tests and benchmarks import `generate`.
"""
import argparse
import csv
import random
import sys

FIRST = ("Ada Alan Amara Anders Aoife Arjun Astrid Beatriz Bjorn Camille Chen Chiara Dario Dmitri Elif Emeka Esther "
         "Farah Felix Freya Gabriel Hana Hiro Ines Isabel Jamal Jana Joao Jonas Kaito Karin Kofi Lara Leon Lucia "
         "Maja Malik Mateo Mei Mira Nadia Nils Noor Olga Omar Pablo Priya Rafael Rania Renee Sakura Samir Sofia "
         "Soren Tariq Tomas Uma Valentina Viktor Yara Yusuf Zoe Zofia").split()
LAST = ("Andersen Bauer Becker Costa Dubois Eriksson Fischer Garcia Haddad Hansen Ito Jansen Kaur Kim Kowalski "
        "Larsen Lopez Martin Meyer Moreau Muller Nakamura Nguyen Novak Okafor Olsen Park Petrov Rossi Santos "
        "Schmidt Silva Sorensen Tanaka Weber Wagner Wright Yilmaz Zhang O'Brien Muñoz Nørgaard").split()
# Only drawn from once the names above are (nearly) all taken, so small files keep the demo's style.
MORE_FIRST = ("Aaron Abigail Adrian Alice Amelia Andrea Anton Beatrix Benjamin Carla Carlos Clara Daniel Diana Edgar "
              "Elena Elias Emil Emma Erik Eva Filip Fiona Georg Greta Hannah Henrik Ida Igor Ivan Jakob Julia Julian "
              "Kai Kasper Laila Lena Liam Linnea Lukas Magnus Marta Max Mia Milan Nina Noah Oliver Oskar Paula Petra "
              "Rosa Ruben Sara Simon Stella Theo Tilda Victor Wanda Xavier").split()
MORE_LAST = ("Albrecht Alves Barros Berg Brandt Carvalho Castro Dahl Delgado Engel Ferreira Fontaine Fuchs Gomes Graf "
             "Hartmann Holm Huber Ibrahim Jensen Kaiser Keller Klein Koch Krause Lange Lehmann Lindberg Lund Marino "
             "Mendes Moretti Neumann Nilsson Ortiz Pereira Peters Quinn Ramos Richter Romano Roth Sato Schulz Sousa "
             "Stein Strand Suzuki Torres Vogel Wolf Yamamoto Young Ziegler").split()
# --realistic
ACCENTED_FIRST = ("Zoë Åsa José Søren Chloé Inès François Björn Małgorzata Siobhán Jürgen Özlem Anaïs Renée Þóra "
                  "Đorđe Ángel Iñaki Jérôme Líadan").split()
MARKED_LAST = ["O'Brien", "D'Angelo", "O'Connor", "D'Souza", "N'Diaye", "O'Neill", "García", "Łukasiewicz",
               "Ødegård", "Çelik", "Müller", "Núñez", "Ibáñez", "Šimić", "Dvořák", "Þórsdóttir", "de la Cruz",
               "van der Berg"]
NON_LATIN = [  # (given names, family names) per script
    ("伟 娜 芳 敏 静 磊 洋 艳 勇 杰".split(), "王 李 张 刘 陈 杨 黄 赵 吴 周".split()),
    ("Αλέξανδρος Ελένη Δημήτρης Μαρία Γιώργος Σοφία Νίκος Κατερίνα".split(),
     "Παπαδόπουλος Παπαδάκη Γεωργίου Οικονόμου Νικολάου Βασιλείου".split()),
    ("Фёдор Анна Дмитрий Ольга Сергей Наталья Иван Татьяна".split(),
     "Иванов Смирнова Кузнецов Попова Соколов Лебедева".split()),
]
NON_LATIN_SHARE = 0.03
DOUBLE_BARRELLED_SHARE = 0.10
LONG_NAME = ("Maximiliana Wilhelmina", "Fitzgerald-Cholmondeley-Montgomery-Worthington")   # 69 characters in all
LONG_NAME_FROM_COUNT = 50
TRIES_PER_POOL = 20

DEPARTMENTS = {
    "Engineering": ["Software Engineer", "Senior Software Engineer", "Site Reliability Engineer", "QA Engineer"],
    "Sales": ["Account Executive", "Sales Development Representative", "Sales Engineer"],
    "Finance": ["Accountant", "Financial Analyst", "Controller"],
    "Human Resources": ["HR Generalist", "Recruiter", "People Partner"],
    "Marketing": ["Marketing Specialist", "Content Writer", "Product Marketing Manager"],
    "Support": ["Support Engineer", "Customer Success Manager"],
}
CITIES = [("Copenhagen", "DK"), ("Berlin", "DE"), ("Lisbon", "PT"), ("Seattle", "US"), ("Toronto", "CA")]
FIELDS = ["EmployeeID", "FirstName", "LastName", "Department", "Title", "ManagerID", "City", "Country", "Status"]


class NamePicker:
    """First/last name pairs nobody has yet.

    A name is drawn from pool 0 (the demo's names) until TRIES_PER_POOL draws in a row are taken; then from pool 1
    (more names), pool 2 (double-barrelled surnames), pool 3 (triple-barrelled)... so any count finishes.
    """

    def __init__(self, rng, realistic=False):
        self.rng = rng
        self.realistic = realistic
        self.pool = 0
        self.taken = {}          # a dict: the names in the order they were taken, for a deterministic choice

    def take(self, name):
        self.taken[name] = True
        return name

    def pick(self):
        while True:
            for _ in range(TRIES_PER_POOL):
                name = self._draw()
                if name not in self.taken:
                    return self.take(name)
            self.pool += 1

    def _draw(self):
        if not self.realistic:
            return self._latin(FIRST, LAST)
        style = self.rng.random()
        if style < NON_LATIN_SHARE:
            given, family = self.rng.choice(NON_LATIN)
            return self.rng.choice(given), self.rng.choice(family)
        if style < NON_LATIN_SHARE + DOUBLE_BARRELLED_SHARE:
            first, last = self._latin(FIRST + ACCENTED_FIRST, LAST + MARKED_LAST)
            return first, "%s-%s" % (last, self.rng.choice(LAST + MARKED_LAST))
        return self._latin(FIRST + ACCENTED_FIRST, LAST + MARKED_LAST)

    def _latin(self, first_names, last_names):
        if self.pool == 0:
            return self.rng.choice(first_names), self.rng.choice(last_names)
        last_names = last_names + MORE_LAST
        return (self.rng.choice(first_names + MORE_FIRST),
                "-".join(self.rng.choice(last_names) for _ in range(self.pool)))


def generate(count, seed=42, start_id=100000, duplicate_names=0.0, realistic=False):
    """`count` people: each department has a head reporting to the CEO, everyone else reports to a head or lead.
    Without options the names are unique and in the demo file's style. A `duplicate_names` share of the people
    (chosen at random) get the name of someone anywhere in the file."""
    if count <= 0:
        return []
    rng = random.Random(seed)
    names = NamePicker(rng, realistic)
    ceo = {"EmployeeID": str(start_id), "FirstName": "Morgan", "LastName": "Reyes", "Department": "Executive",
           "Title": "Chief Executive Officer", "ManagerID": "", "City": "Copenhagen", "Country": "DK",
           "Status": "Active"}
    names.take((ceo["FirstName"], ceo["LastName"]))
    people = [ceo]
    managers = {}
    namesakes = []
    departments = sorted(DEPARTMENTS)
    long_name_index = count // 2 if realistic and count >= LONG_NAME_FROM_COUNT else None
    for index in range(1, count):
        department = rng.choice(departments)
        city, country = rng.choice(CITIES)
        leads = managers.setdefault(department, [])
        is_lead = len(leads) < 1 + index // 60
        manager = ceo["EmployeeID"] if not leads else rng.choice(leads)
        if index == long_name_index:
            first, last = names.take(LONG_NAME)
        elif duplicate_names and rng.random() < duplicate_names:
            first, last = None, None          # named after the loop, from everyone's names
        else:
            first, last = names.pick()
        person = {
            "EmployeeID": str(start_id + index),
            "FirstName": first,
            "LastName": last,
            "Department": department,
            "Title": f"Head of {department}" if not leads else rng.choice(DEPARTMENTS[department]),
            "ManagerID": manager,
            "City": city,
            "Country": country,
            "Status": "Active" if rng.random() > 0.03 else "Leave",
        }
        if is_lead:
            leads.append(person["EmployeeID"])
        if first is None:
            namesakes.append(person)
        people.append(person)
    everyone = list(names.taken)
    for person in namesakes:
        person["FirstName"], person["LastName"] = rng.choice(everyone)
    return people


def write(people, stream):
    writer = csv.DictWriter(stream, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(people)


def fraction(text):
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError("a fraction from 0 up to (not including) 1, e.g. 0.3")
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--duplicate-names", type=fraction, default=0.0, metavar="FRACTION",
                        help="share of people whose first+last name someone else already has (default 0)")
    parser.add_argument("--realistic", action="store_true",
                        help="accents, apostrophes, double-barrelled, non-Latin and over-64-character names")
    parser.add_argument("--output", default="-")
    args = parser.parse_args()
    people = generate(args.count, args.seed, duplicate_names=args.duplicate_names, realistic=args.realistic)
    if args.output == "-":
        write(people, sys.stdout)
    else:
        with open(args.output, "w", encoding="utf-8", newline="") as stream:
            write(people, stream)


if __name__ == "__main__":
    main()
