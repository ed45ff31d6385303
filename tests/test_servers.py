"""The real-mail-server fixtures work: Postfix delivers into Dovecot, and both can go down."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

pytestmark = pytest.mark.e2e


def teacher_mail(sender: str, to: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="school.example")
    message.set_content("Καλημέρα σας, δεν μπορώ να συνδεθώ στο Webex.\n")
    return message


def test_helpdesk_address_reaches_the_pekes_inbox(fresh_mail_servers):
    servers = fresh_mail_servers
    message = teacher_mail("teacher1@school.example", "helpdesk@pekes3.att.example", "Webex")
    refused = servers.send(message, "teacher1@school.example", ["helpdesk@pekes3.att.example"])

    delivered = servers.wait_for("pekes3", count=1)

    assert refused == {}
    assert len(delivered) == 1
    assert message["Message-ID"].encode() in delivered[0]
    assert servers.dovecot.count("pekes1") == 0


def test_teacher_address_reaches_the_teacher_inbox(fresh_mail_servers):
    servers = fresh_mail_servers
    for to in ("teacher7@school.example", "teacher7@sch.example"):
        servers.send(
            teacher_mail("helpdesk@pekes1.att.example", to, "Απάντηση"),
            "helpdesk@pekes1.att.example",
            [to],
        )

    delivered = servers.wait_for("teacher7", count=2)

    assert [b"Delivered-To: teacher7@school.example" in raw for raw in delivered].count(True) == 1
    assert [b"Delivered-To: teacher7@sch.example" in raw for raw in delivered].count(True) == 1


def test_unknown_address_in_a_test_domain_is_refused(fresh_mail_servers):
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        fresh_mail_servers.send(
            b"Subject: x\r\n\r\nx\r\n", "teacher1@school.example", ["nobody@school.example"]
        )

    assert refused.value.recipients["nobody@school.example"][0] == 550


def test_mail_to_other_domains_is_discarded_not_sent(fresh_mail_servers):
    servers = fresh_mail_servers
    refused = servers.send(
        b"Subject: out\r\n\r\nx\r\n", "helpdesk@pekes2.att.example", ["someone@elsewhere.example"]
    )
    servers.postfix.wait_delivered()

    assert refused == {}
    assert "status=sent (elsewhere.example)" in servers.postfix.log_path.read_text()
    assert "relay=none" in servers.postfix.log_path.read_text()


def test_postfix_down_refuses_connections_and_comes_back(fresh_mail_servers):
    servers = fresh_mail_servers
    servers.postfix.stop()

    with pytest.raises(ConnectionRefusedError):
        servers.send(
            b"Subject: lost\r\n\r\nx\r\n",
            "teacher2@school.example",
            ["helpdesk@pekes4.att.example"],
        )

    servers.postfix.start()
    servers.send(
        b"Subject: back\r\n\r\nx\r\n", "teacher2@school.example", ["helpdesk@pekes4.att.example"]
    )
    delivered = servers.wait_for("pekes4", count=1)

    assert len(delivered) == 1
    assert b"Subject: back" in delivered[0]


def test_mail_queued_while_dovecot_is_down_arrives_after_restart(fresh_mail_servers):
    servers = fresh_mail_servers
    servers.dovecot.stop()
    servers.send(
        b"Subject: queued\r\n\r\nx\r\n", "teacher3@school.example", ["helpdesk@pekes5.att.example"]
    )

    assert servers.postfix.queued() == 1

    servers.dovecot.start()
    servers.postfix.wait_delivered()

    assert servers.dovecot.count("pekes5") == 1


def test_dovecot_restart_keeps_mail_and_folders(fresh_mail_servers):
    servers = fresh_mail_servers
    servers.dovecot.append("pekes6", b"Subject: one\r\n\r\n1\r\n")
    servers.dovecot.append("pekes6", b"Subject: two\r\n\r\n2\r\n", folder="Processed")
    before = servers.dovecot.uidvalidity("pekes6")

    servers.dovecot.restart()

    assert servers.dovecot.fetch_all("pekes6") == [b"Subject: one\r\n\r\n1\r\n"]
    assert servers.dovecot.fetch_all("pekes6", "Processed") == [b"Subject: two\r\n\r\n2\r\n"]
    assert servers.dovecot.uidvalidity("pekes6") == before


def test_set_uidvalidity_changes_it_and_keeps_the_messages(fresh_mail_servers):
    dovecot = fresh_mail_servers.dovecot
    dovecot.append("pekes2", b"Subject: a\r\n\r\na\r\n")
    dovecot.append("pekes2", b"Subject: b\r\n\r\nb\r\n")
    before = dovecot.uidvalidity("pekes2")

    dovecot.set_uidvalidity("pekes2", "INBOX", before + 1000)

    with dovecot.connect("pekes2") as client:
        selected = client.select_folder("INBOX", readonly=True)
    assert selected[b"UIDVALIDITY"] == before + 1000
    assert selected[b"EXISTS"] == 2
    assert len(dovecot.fetch_all("pekes2")) == 2


def test_fresh_mail_servers_start_empty(fresh_mail_servers):
    servers = fresh_mail_servers
    servers.dovecot.append("teacher9", b"Subject: old\r\n\r\nx\r\n", folder="Archive/2020")
    servers.send(
        b"Subject: old\r\n\r\nx\r\n", "teacher1@school.example", ["helpdesk@pekes1.att.example"]
    )
    servers.wait_for("pekes1", count=1)

    servers.reset()

    assert servers.dovecot.folders("teacher9") == ["INBOX"]
    assert servers.dovecot.count("pekes1") == 0


def test_imap_login_needs_the_right_password(fresh_mail_servers):
    servers = fresh_mail_servers

    with IMAPClient(servers.imap_host, port=servers.imap_port, ssl=False) as client:
        with pytest.raises(LoginError):
            client.login("pekes1", "wrong-password")
        client.login("pekes1", servers.password)
        capabilities = client.capabilities()

    assert {b"MOVE", b"IDLE", b"UIDPLUS"} <= set(capabilities)


def test_idle_session_hears_of_mail_delivered_through_postfix(fresh_mail_servers):
    servers = fresh_mail_servers
    with servers.dovecot.connect("pekes1") as client:
        client.select_folder("INBOX")
        client.idle()
        servers.send(
            b"Subject: idle\r\n\r\nx\r\n", "teacher5@sch.example", "helpdesk@pekes1.att.example"
        )
        responses = client.idle_check(timeout=10)
        client.idle_done()

    assert (1, b"EXISTS") in responses
