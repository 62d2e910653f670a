"""All models, imported here so metadata and mappers are complete."""

from helpdesk.models.access import AccessToken
from helpdesk.models.attachment import Attachment, ScanStatus
from helpdesk.models.audit import AuditEvent, AuditHead, SiteAuditEvent
from helpdesk.models.canned import CannedReply
from helpdesk.models.comment import BODY_MAX, Channel, Comment
from helpdesk.models.flag import FeatureFlag
from helpdesk.models.inbound import InboundMessage, InboundStatus
from helpdesk.models.notify import (
    Delivery,
    DeliveryChannel,
    DeliveryStatus,
    EventKind,
    JobRun,
    NotificationMode,
    NotificationPreference,
    OutboxEvent,
    WebhookEndpoint,
)
from helpdesk.models.org import STAFF_ROLES, Membership, Organization, Role
from helpdesk.models.password_reset import PasswordReset
from helpdesk.models.sla import (
    BREACH_LEVEL,
    BusinessCalendar,
    SlaEvent,
    SlaPause,
    SlaPolicy,
    SlaState,
    SlaTarget,
)
from helpdesk.models.ticket import SUBJECT_MAX, Priority, Status, Ticket, TicketEvent
from helpdesk.models.token import ApiToken
from helpdesk.models.user import User
from helpdesk.models.view import SavedView

__all__ = [
    "BODY_MAX",
    "BREACH_LEVEL",
    "STAFF_ROLES",
    "SUBJECT_MAX",
    "AccessToken",
    "ApiToken",
    "Attachment",
    "AuditEvent",
    "AuditHead",
    "BusinessCalendar",
    "CannedReply",
    "Channel",
    "Comment",
    "Delivery",
    "DeliveryChannel",
    "DeliveryStatus",
    "EventKind",
    "FeatureFlag",
    "InboundMessage",
    "InboundStatus",
    "JobRun",
    "Membership",
    "NotificationMode",
    "NotificationPreference",
    "Organization",
    "OutboxEvent",
    "PasswordReset",
    "Priority",
    "Role",
    "SavedView",
    "ScanStatus",
    "SiteAuditEvent",
    "SlaEvent",
    "SlaPause",
    "SlaPolicy",
    "SlaState",
    "SlaTarget",
    "Status",
    "Ticket",
    "TicketEvent",
    "User",
    "WebhookEndpoint",
]
