"""The services the entry points use, built once by `bootstrap`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from koprogo_iot.live.bus import LiveBus
from koprogo_iot.live.memory import MemoryBus
from koprogo_iot.services.accounts import Accounts
from koprogo_iot.services.alert_rules import AlertRuleSettings
from koprogo_iot.services.monitoring import Monitoring
from koprogo_iot.services.provisioning import Provisioning
from koprogo_iot.storage.ports import Store


@dataclass(frozen=True, slots=True)
class Services:
    store: Store
    accounts: Accounts
    provisioning: Provisioning
    monitoring: Monitoring
    bus: LiveBus
    alert_rules: AlertRuleSettings

    @classmethod
    def over(
        cls, store: Store, secret: str, token_ttl: timedelta = timedelta(hours=12), bus: LiveBus | None = None
    ) -> Services:
        provisioning = Provisioning(store)
        return cls(
            store, Accounts(store, secret, token_ttl), provisioning, Monitoring(store, provisioning),
            bus or MemoryBus(), alert_rules=AlertRuleSettings(store, provisioning),
        )  # fmt: skip
