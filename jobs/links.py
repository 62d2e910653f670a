"""Requester link jobs: email a fresh link when someone opened an expired one.

Queued by the /t/<token> page (at most once an hour per ticket and requester, see
services/access_links.py) on the "notify" queue. Ids only, org id first; it runs in the
org's tenant scope. A failure to send raises, so the job lands in RQ's failed registry
(`flask jobs requeue-failed`) instead of vanishing.
"""

from __future__ import annotations

import logging

from helpdesk.models import Organization
from helpdesk.services import access_links, delivery_channels, notification_content
from helpdesk.services.mail_transport import make_message_id, send_mail, ticket_thread_id
from jobs.context import org_session

log = logging.getLogger(__name__)


def send_fresh_link(org_id: int, ticket_id: int, requester_id: int) -> bool:
    """Mint a new link to the ticket and email it to its requester; False when nobody may get one.

    Raises MailNotConfigured, TransientMailError or PermanentMailError when sending fails.
    """
    with org_session(org_id) as session:
        found = access_links.fresh_link_recipient(session, ticket_id, requester_id)
        org = session.get(Organization, org_id)
        if found.member is None or found.ticket is None or org is None:
            log.info("fresh_link_skipped org_id=%s ticket_id=%s", org_id, ticket_id)
            return False
        ticket, user = found.ticket, found.member.user
        settings = delivery_channels.mail_settings()
        token, plaintext = access_links.mint_link(session, ticket)
        days = (token.expires_at - token.created_at).days
        content = notification_content.fresh_link_email(
            org, ticket, access_links.link_url(plaintext), days
        )
        message_id = make_message_id("link", token.id, settings.domain)
        mail = delivery_channels.build_mail(settings, org, user.email, content, message_id)
        thread = ticket_thread_id(org.slug, ticket.number, settings.domain)
        mail.in_reply_to, mail.references = thread, [thread]
        session.commit()  # the link exists before the email that carries it
    send_mail(settings.smtp, mail)
    log.info("fresh_link_sent org_id=%s ticket_id=%s token_id=%s", org_id, ticket_id, token.id)
    return True
