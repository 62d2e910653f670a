"""Ticket list: keyset pagination and allow-listed filters, per org and per role."""

from __future__ import annotations

from helpdesk.services import api_tokens
from helpdesk.tenancy import tenant_scope
from tests.factories import make_ticket

BASE = "/api/v1/orgs/alpha/tickets"


def bearer(session, member) -> dict[str, str]:
    with tenant_scope(session, member.org_id):
        _token, plaintext = api_tokens.create_token(session, member, "test token")
    return {"Authorization": f"Bearer {plaintext}"}


def walk(client, headers, query: str = "") -> list[list[int]]:
    """Follow next_cursor to the end; return the ticket numbers of each page."""
    pages: list[list[int]] = []
    url = f"{BASE}?{query}"
    while True:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.json
        pages.append([t["number"] for t in response.json["items"]])
        cursor = response.json["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "pagination does not terminate"
        url = f"{BASE}?{query}&cursor={cursor}" if query else f"{BASE}?cursor={cursor}"


def test_pages_cover_every_ticket_once_newest_first(client, session, world):
    alpha, beta = world["alpha"], world["beta"]
    for i in range(7):
        make_ticket(session, alpha["org"], alpha["agent"], subject=f"Alpha {i}")
    for _ in range(4):
        make_ticket(session, beta["org"], beta["agent"])
    headers = bearer(session, alpha["agent"])
    pages = walk(client, headers, "limit=3")
    assert [len(p) for p in pages] == [3, 3, 1]
    numbers = [n for page in pages for n in page]
    assert numbers == [7, 6, 5, 4, 3, 2, 1]


def test_updates_between_pages_do_not_duplicate(client, session, world):
    alpha = world["alpha"]
    for _ in range(5):
        make_ticket(session, alpha["org"], alpha["agent"])
    headers = bearer(session, alpha["agent"])
    first = client.get(f"{BASE}?limit=2", headers=headers).json
    assert [t["number"] for t in first["items"]] == [5, 4]
    client.patch(f"{BASE}/1", json={"status": "open"}, headers=headers)  # jumps to the top
    rest = client.get(f"{BASE}?limit=10&cursor={first['next_cursor']}", headers=headers).json
    assert [t["number"] for t in rest["items"]] == [3, 2]
    assert rest["next_cursor"] is None


def test_default_limit_is_25(client, session, world):
    alpha = world["alpha"]
    for _ in range(26):
        make_ticket(session, alpha["org"], alpha["agent"])
    response = client.get(BASE, headers=bearer(session, alpha["agent"])).json
    assert len(response["items"]) == 25
    assert response["next_cursor"] is not None


def test_empty_list(client, session, world):
    response = client.get(BASE, headers=bearer(session, world["alpha"]["agent"]))
    assert response.json == {"items": [], "next_cursor": None}


def test_filters(client, session, world):
    alpha = world["alpha"]
    for priority in ("low", "high", "high", "urgent"):
        make_ticket(session, alpha["org"], alpha["agent"], priority=priority)
    headers = bearer(session, alpha["agent"])
    client.patch(f"{BASE}/2", json={"assignee_email": "agent@alpha.test"}, headers=headers)
    client.patch(f"{BASE}/3", json={"assignee_email": "admin@alpha.test", "status": "pending"},
                 headers=headers)  # fmt: skip

    def numbers(query: str) -> list[int]:
        return sorted(n for page in walk(client, headers, query) for n in page)

    assert numbers("priority=high") == [2, 3]
    assert numbers("status=pending") == [3]
    assert numbers("status=new&priority=high") == [2]
    assert numbers("assignee=me") == [2]
    assert numbers("assignee=unassigned") == [1, 4]
    assert numbers("assignee=ADMIN@alpha.test") == [3]
    assert numbers("assignee=Me&limit=1") == [2]
    assert numbers("status=&priority=") == [1, 2, 3, 4]


def test_requester_pages_through_own_tickets_only(client, session, world):
    alpha = world["alpha"]
    requester = alpha["requester"]
    for i in range(6):
        owner = requester.user if i % 2 else f"someone{i}@example.test"
        make_ticket(session, alpha["org"], alpha["agent"], requester=owner)
    pages = walk(client, bearer(session, requester), "limit=2")
    assert [n for page in pages for n in page] == [6, 4, 2]
