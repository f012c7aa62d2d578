"""Generate the bundled demo HR export (playbooks/files/hr_people.csv) deterministically.

Run once and commit the output; tests and the benchmark generate their own larger files with the same function.
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


def generate(count, seed=42, start_id=100000):
    """Yield `count` people; each department has a head reporting to the CEO, everyone else reports to a head or lead."""
    rng = random.Random(seed)
    people = []
    ceo = {"EmployeeID": str(start_id), "FirstName": "Morgan", "LastName": "Reyes", "Department": "Executive",
           "Title": "Chief Executive Officer", "ManagerID": "", "City": "Copenhagen", "Country": "DK", "Status": "Active"}
    people.append(ceo)
    managers = {}
    names_taken = {(ceo["FirstName"], ceo["LastName"])}
    for index in range(1, count):
        department = rng.choice(sorted(DEPARTMENTS))
        city, country = rng.choice(CITIES)
        leads = managers.setdefault(department, [])
        is_lead = len(leads) < 1 + index // 60
        manager = ceo["EmployeeID"] if not leads else rng.choice(leads)
        first, last = _unused_name(rng, names_taken)
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
        people.append(person)
    return people


def _unused_name(rng, taken):
    """A first/last name pair nobody has yet, so the demo's first.last UPN rule never collides."""
    while True:
        name = (rng.choice(FIRST), rng.choice(LAST))
        if name not in taken:
            taken.add(name)
            return name


def write(people, stream):
    writer = csv.DictWriter(stream, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(people)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", default="-")
    args = parser.parse_args()
    people = generate(args.count, args.seed)
    if args.output == "-":
        write(people, sys.stdout)
    else:
        with open(args.output, "w", encoding="utf-8", newline="") as stream:
            write(people, stream)


if __name__ == "__main__":
    main()
