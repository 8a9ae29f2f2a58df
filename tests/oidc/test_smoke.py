from tests.conftest import redeem


def test_code_flow_end_to_end(client, browser, rp, student, svc):
    query, verifier = browser.sign_in_and_authorize(rp, student, state="xyz", nonce="n-1")
    assert query["state"] == "xyz"
    assert query["iss"] == svc.settings.issuer
    response = redeem(client, rp, query["code"], verifier)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["token_type"].lower() == "bearer"
    assert "id_token" in body
    info = client.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert info.status_code == 200
    assert info.get_json()["sub"]
