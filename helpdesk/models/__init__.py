"""All models, imported here so metadata and mappers are complete."""

from helpdesk.models.canned import CannedReply
from helpdesk.models.comment import BODY_MAX, Channel, Comment
from helpdesk.models.org import STAFF_ROLES, Membership, Organization, Role
from helpdesk.models.ticket import SUBJECT_MAX, Priority, Status, Ticket, TicketEvent
from helpdesk.models.token import ApiToken
from helpdesk.models.user import User
from helpdesk.models.view import SavedView

__all__ = [
    "BODY_MAX",
    "STAFF_ROLES",
    "SUBJECT_MAX",
    "ApiToken",
    "CannedReply",
    "Channel",
    "Comment",
    "Membership",
    "Organization",
    "Priority",
    "Role",
    "SavedView",
    "Status",
    "Ticket",
    "TicketEvent",
    "User",
]
