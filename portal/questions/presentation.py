"""Questions in plain words."""

from portal.errors import N_

QUESTION_STATUS = {
    "open": N_("waiting for the answer"),
    "answered": N_("answered"),
    "settled": N_("answered"),
    "expired": N_("closed unanswered"),
}
