"""A tenant's SSH key pair for SFTP destinations: the public half is shown to install, the private half sealed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.tenant import Tenant


class SshKey(Model):
    """One Ed25519 key pair per tenant (``tenant`` is unique: a concurrent second creator fails and reads this row).

    ``private_sealed`` is the OpenSSH private key sealed with the SecretBox (purpose ``ssh-key:<tenant_id>``);
    it is never stored or shown in clear. ``public_line`` is ``"ssh-ed25519 AAAA… invoicebot-<tenant>"``.
    Rotation replaces both halves in place and sets ``rotated_at``.
    """

    id = fields.IntField(primary_key=True)
    tenant: fields.OneToOneRelation[Tenant] = fields.OneToOneField(
        "models.Tenant", related_name="ssh_key", on_delete=fields.CASCADE
    )
    tenant_id: int
    algorithm = fields.CharField(max_length=32, default="ssh-ed25519")
    public_line = fields.CharField(max_length=400)
    fingerprint = fields.CharField(max_length=80)
    private_sealed = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)
    rotated_at = fields.DatetimeField(null=True)

    class Meta:
        table = "ssh_key"

    def __repr__(self) -> str:  # never the sealed private key
        return f"SshKey(tenant_id={self.tenant_id}, fingerprint={self.fingerprint!r})"
