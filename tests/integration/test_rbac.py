"""The permission matrix, walked through HTTP: each role gets the page where it
should, and is turned away (403, or a redirect to the login page) elsewhere."""
import pytest

from tests.conftest import login

ROLES = ("Admin", "Finance", "Support", "Manager", "Client")

# url -> the roles that may open it
MATRIX = {
    "/": {"Admin", "Finance", "Support", "Manager"},
    "/clientview/list/": {"Admin", "Finance", "Support", "Manager"},
    "/clientview/add": {"Admin", "Finance"},
    "/contactview/list/": {"Admin", "Finance", "Support", "Manager"},
    "/clientnoteview/add": {"Admin", "Finance", "Support"},
    "/serviceview/list/": {"Admin", "Finance", "Support", "Manager"},
    "/orderview/list/": {"Admin", "Finance", "Support", "Manager"},
    "/promotionview/add": {"Admin", "Finance"},
    "/domainview/list/": {"Admin", "Finance", "Support", "Manager"},
    "/invoiceview/list/": {"Admin", "Finance", "Support", "Manager"},
    "/transactionview/list/": {"Admin", "Finance", "Manager"},
    "/creditentryview/list/": {"Admin", "Finance", "Manager"},
    "/billableitemview/add": {"Admin", "Finance"},
    "/quoteview/list/": {"Admin", "Finance", "Manager"},
    "/productview/list/": {"Admin", "Finance", "Support", "Manager"},
    "/productview/add": {"Admin"},
    "/currencyview/add": {"Admin"},
    "/taxruleview/list/": {"Admin", "Finance", "Manager"},
    "/taxruleview/add": {"Admin"},
    "/paymentgatewayview/list/": {"Admin", "Finance", "Manager"},
    "/serverview/list/": {"Admin", "Finance", "Manager"},
    "/ticketview/list/": {"Admin", "Support", "Manager"},
    "/ticketview/add": {"Admin", "Support"},
    "/kbarticleview/add": {"Admin", "Support"},
    "/announcementview/list/": {"Admin", "Support", "Manager"},
    "/settingview/list/": {"Admin", "Manager"},
    "/emailtemplateview/add": {"Admin"},
    "/activitylogview/list/": {"Admin", "Finance", "Manager"},
    "/automationrunview/list/": {"Admin", "Finance", "Manager"},
    "/users/list/": {"Admin"},
    "/roles/list/": {"Admin"},
}


@pytest.fixture
def logged_in(app, staff):
    clients = {}

    def get(role):
        if role not in clients:
            username, password = staff(role)
            c = app.test_client()
            response = login(c, username, password)
            assert response.status_code == 302
            clients[role] = c
        return clients[role]

    return get


def is_turned_away(response) -> bool:
    if response.status_code in (401, 403):
        return True
    if response.status_code == 302:
        location = response.headers["Location"]
        return "/login" in location or "/portal" in location
    return False


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(role, logged_in):
    c = logged_in(role)
    wrong = []
    for url, allowed in MATRIX.items():
        response = c.get(url)
        if role in allowed:
            if response.status_code != 200:
                wrong.append(f"{url}: expected 200, got {response.status_code}")
        elif not is_turned_away(response):
            wrong.append(f"{url}: expected refusal, got {response.status_code}")
    assert wrong == [], f"{role}: " + "; ".join(wrong)


def test_anonymous_is_sent_to_login(client):
    for url in MATRIX:
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url


def test_client_user_dashboard_goes_to_portal(logged_in):
    response = logged_in("Client").get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/portal/")
