"""Synthetic tenant data for scale tests: users with departments, job titles and managers, and groups with members.

Deterministic for a given seed. Objects are added through Directory.add_seeded (fully replicated, one change log
entry each) so outstanding delta tokens see them.
"""
import random

from directory import gc_paused
from directory_records import iso_now, new_group_record, new_user_record

DEPARTMENTS = ["Engineering", "Sales", "Marketing", "Finance", "Human Resources", "Legal", "Operations",
               "Support", "Research", "Procurement"]
JOB_TITLES = ["Engineer", "Senior Engineer", "Analyst", "Consultant", "Specialist", "Coordinator", "Associate",
              "Account Executive", "Designer", "Administrator"]
GIVEN_NAMES = ["Adele", "Alex", "Allan", "Christie", "Debra", "Diego", "Emily", "Enrico", "Grady", "Henrietta",
               "Irvin", "Isaiah", "Johanna", "Joni", "Lee", "Lidia", "Lynne", "Megan", "Miriam", "Nestor", "Patti",
               "Pradeep", "Raul", "Sam", "Ian", "Olga", "Kenji", "Amara", "Lucia", "Tomasz"]
SURNAMES = ["Vance", "Wilber", "Deyoung", "Cline", "Berg", "Siciliani", "Braun", "Gonzalez", "Archie", "Gonzales",
            "Bellinger", "Jones", "Lauer", "Sherman", "Gu", "Holloway", "Robbins", "Bowen", "Hooper", "Wilke",
            "Fernandez", "Gupta", "Razor", "Miller", "Ito", "Novak", "Okafor", "Moreau", "Costa", "Kowalski"]
CITIES = [("Seattle", "United States", "US"), ("London", "United Kingdom", "GB"), ("Berlin", "Germany", "DE"),
          ("Paris", "France", "FR"), ("Tokyo", "Japan", "JP"), ("Sydney", "Australia", "AU")]
GROUP_TOPICS = ["Team", "Project", "Distribution", "Access", "Committee"]


def generate(directory, users: int, groups: int, seed: int = 0):
    """Add `users` users and `groups` groups (memberships drawn from the new users, else from every user)."""
    rng = random.Random(seed)
    with gc_paused():
        new_users = _generate_users(directory, rng, users)
        _generate_groups(directory, rng, groups, new_users)


def _generate_users(directory, rng, count):
    start = directory.generated
    directory.generated += count
    created = iso_now()
    givens, surnames = rng.choices(GIVEN_NAMES, k=count), rng.choices(SURNAMES, k=count)
    titles = rng.choices(JOB_TITLES, k=count)
    made = []
    for offset, number in enumerate(range(start, start + count)):
        given, surname = givens[offset], surnames[offset]
        department = DEPARTMENTS[number % len(DEPARTMENTS)]
        city, country, usage_location = CITIES[number % len(CITIES)]
        nickname = f"{given}.{surname}.{number:06d}".lower()
        upn = f"{nickname}@{directory.domain}"
        made.append(new_user_record(_random_guid(rng), {
            "accountEnabled": True, "displayName": f"{given} {surname}", "givenName": given, "surname": surname,
            "userPrincipalName": upn, "mail": upn, "mailNickname": nickname, "department": department,
            "jobTitle": titles[offset], "employeeId": f"E{number:07d}", "companyName": "Contoso", "city": city,
            "country": country, "usageLocation": usage_location, "employeeType": "Employee",
        }, created=created))
    directory.add_seeded("user", made)
    _assign_generated_managers(directory, rng, made)
    return made


def _assign_generated_managers(directory, rng, made):
    """One head per department; about one user in ten manages a team reporting to the head."""
    by_department = {}
    for record in made:
        by_department.setdefault(record["department"], []).append(record["id"])
    for ids in by_department.values():
        head, managers = ids[0], ids[1:max(2, len(ids) // 10)]
        for manager_id in managers:
            directory.link_manager(manager_id, head)
        reports = ids[len(managers) + 1:]
        chosen = rng.choices(managers, k=len(reports)) if managers else [head] * len(reports)
        for user_id, manager_id in zip(reports, chosen):
            directory.link_manager(user_id, manager_id)


def _generate_groups(directory, rng, count, new_users):
    created = iso_now()
    user_ids = [u["id"] for u in new_users] or list(directory.users)
    records = []
    for number in range(count):
        department = DEPARTMENTS[number % len(DEPARTMENTS)]
        unified = number % 10 == 0
        records.append(new_group_record(_random_guid(rng), {
            "displayName": f"{department} {GROUP_TOPICS[number % len(GROUP_TOPICS)]} {number:05d}",
            "mailNickname": f"grp{directory.next_seq + number:07d}", "mailEnabled": unified,
            "securityEnabled": not unified, "groupTypes": ["Unified"] if unified else [],
            "description": f"Synthetic {department} group",
        }, directory.domain, created=created))
    directory.add_seeded("group", records)
    sizes = rng.choices(range(5, 41), k=count)
    for record, size in zip(records, sizes):
        members = directory.members.setdefault(record["id"], {})
        for member_id in rng.choices(user_ids, k=size) if user_ids else ():
            members[member_id] = None
            directory.member_of.setdefault(member_id, {})[record["id"]] = None


def _random_guid(rng):
    """A version-4 GUID from a seeded generator (uuid.UUID is several times slower for bulk data)."""
    bits = rng.getrandbits(128) & ~(0xF000 << 64) & ~(0xC000 << 48) | (0x4000 << 64) | (0x8000 << 48)
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
