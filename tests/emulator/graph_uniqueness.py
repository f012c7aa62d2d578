"""Unique values across the tenant, compared without regard to case, as Entra keeps them.

Learn "Identity synchronization and duplicate attribute resiliency"
(https://learn.microsoft.com/entra/identity/hybrid/connect/how-to-connect-syncservice-duplicate-attribute-resiliency):
UserPrincipalName and SMTP proxy addresses "are required to be unique across all User, Group, or Contact objects"; a
create or update that violates this is blocked. A soft-deleted object keeps its values until it is purged.

Error bodies:
- another user already has the userPrincipalName: REFERENCE.md "Duplicate UPN" (microsoftgraph/microsoft-graph-docs
  #1508): 400 Request_BadRequest "Another object with the same value for property userPrincipalName already exists."
  with details [{"target": "userPrincipalName", "code": "ObjectConflict"}];
- the value is another object's SMTP address (its mail or a proxy address): microsoftgraph/microsoft-graph-docs-contrib
  #8421 (a user's mail set to another user's proxy address): "Another object with the same value for property
  proxyAddresses already exists." with an ObjectConflict detail targeting proxyAddresses, then a ConflictingObjects
  detail (the thread cuts that one off after its message, so it carries no target here).
"""
from graph_errors import bad_request

UPN_CONFLICT = "Another object with the same value for property userPrincipalName already exists."
PROXY_CONFLICT = "Another object with the same value for property proxyAddresses already exists."


def upn_conflict():
    return bad_request(UPN_CONFLICT, details=[{"target": "userPrincipalName", "code": "ObjectConflict"}])


def proxy_conflict():
    return bad_request(PROXY_CONFLICT, details=[
        {"code": "ObjectConflict", "message": PROXY_CONFLICT, "target": "proxyAddresses"},
        {"code": "ConflictingObjects", "message": PROXY_CONFLICT},
    ])


def check_upn_unique(directory, upn: str, current_id=None) -> None:
    existing = directory.user_by_name(upn)
    if existing is not None and existing["id"] != current_id:
        raise upn_conflict()
    wanted = upn.lower()
    for object_id, entry in directory.deleted.items():
        if entry["kind"] == "user" and (entry["record"].get("userPrincipalName") or "").lower() == wanted \
                and object_id != current_id:
            raise upn_conflict()
    check_addresses_unique(directory, [upn], current_id)


def check_addresses_unique(directory, addresses, current_id=None) -> None:
    """None of `addresses` may be another object's mail or smtp: proxy address."""
    for address in addresses:
        holder = directory.address_holder(address)
        if holder is not None and holder != current_id:
            raise proxy_conflict()


def proxy_addresses_with_mail(record: dict, mail: str) -> list:
    """A user's proxyAddresses after its mail changes: Learn "user resource type", mail: "Changes to this property
    update the user's proxyAddresses collection to include the value as an SMTP address"; the new address becomes
    the primary (SMTP:) and an earlier primary stays as a secondary (smtp:) alias (Microsoft Q&A "proxyAddresses Field
    in Azure AD", https://learn.microsoft.com/answers/questions/873307/proxyaddresses-field-in-azure-ad.html)."""
    kept = []
    for proxy in record.get("proxyAddresses") or []:
        prefix, _, address = proxy.partition(":")
        if address.lower() == mail.lower():
            continue
        kept.append(f"smtp:{address}" if prefix == "SMTP" else proxy)
    return [f"SMTP:{mail}"] + kept
