def test_login_page_renders(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"password" in response.data.lower()


def test_admin_login_reaches_dashboard(admin_client):
    response = admin_client.get("/")
    assert response.status_code == 200
    assert b"Dashboard" in response.data
