"""The shop's push, tested with the unipush-bridge plugin's fixtures only."""

from shop_notify import order_shipped


def test_sample_from_the_docs(unipush):
    unipush.push(title="Order shipped", payload={"order": 42})
    unipush.click(unipush.notification(title="Order shipped"))
    assert unipush.wait_for_event("click")["data"]["payload"] == {"order": 42}


def test_our_server_code_notifies_and_the_click_opens_the_order(unipush):
    order_shipped(unipush.gateway.http_url, unipush.daemon.appid, unipush.cid, order=7)
    note = unipush.notification(title="Order shipped")
    assert note.body == "Your order #7 is on its way"
    unipush.click(note)
    click = unipush.wait_for_event("click")
    assert click["data"]["payload"]["path"] == "/pages/order?id=7"


def test_an_open_app_gets_a_receive_instead(unipush, unipush_listener):
    order_shipped(unipush.gateway.http_url, unipush.daemon.appid, unipush.cid, order=8)
    assert unipush_listener.wait_for_event("receive")["data"]["payload"]["order"] == 8
    assert unipush.notifications() == []
