"""The services the entry points use, built once from the storage ports by `bootstrap.build_services`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from koprogo_iot.live.bus import LiveBus
from koprogo_iot.services.accounts import Accounts
from koprogo_iot.services.alert_rules import AlertRuleSettings
from koprogo_iot.services.analytics import Analytics
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.services.bacnet import BacnetConfiguration
from koprogo_iot.services.credentials import BrokerAccounts, DeviceLogins
from koprogo_iot.services.devices import Devices
from koprogo_iot.services.integrations import Integrations
from koprogo_iot.services.ista import IstaService
from koprogo_iot.services.monitoring import Monitoring
from koprogo_iot.services.notifications import NotificationSetup, TemplateCheck
from koprogo_iot.services.provisioning import Provisioning
from koprogo_iot.storage.ports import Storage


@dataclass(frozen=True, slots=True)
class Services:
    accounts: Accounts
    provisioning: Provisioning
    monitoring: Monitoring
    alert_rules: AlertRuleSettings
    analytics: Analytics
    devices: Devices
    integrations: Integrations
    device_logins: DeviceLogins
    ista: IstaService
    notifications: NotificationSetup
    audit: AuditLog
    bacnet: BacnetConfiguration
    bus: LiveBus

    @classmethod
    def over(
        cls,
        storage: Storage,
        secret: str,
        token_ttl: timedelta,
        bus: LiveBus,
        check_template: TemplateCheck,
        broker: BrokerAccounts | None = None,
    ) -> Services:
        """`broker`: where device credentials take effect (none: they cannot be changed, the error says why)."""
        audit = AuditLog(storage.audit)
        provisioning = Provisioning(storage.tenancy, storage.sensors, audit)
        return cls(
            accounts=Accounts(storage.tenancy, secret, token_ttl, audit),
            provisioning=provisioning,
            monitoring=Monitoring(provisioning, storage.readings, storage.alerts, storage.dead_letters, audit),
            alert_rules=AlertRuleSettings(storage.alert_rules, provisioning, audit),
            analytics=Analytics(provisioning, storage.source),
            devices=Devices(storage.devices, provisioning),
            integrations=Integrations(storage.integrations, audit),
            device_logins=DeviceLogins(storage.credentials, storage.tenancy, audit, broker),
            ista=IstaService(storage.ista, storage.tenancy, storage.sensors, storage.source),
            notifications=NotificationSetup(storage.notifications, storage.alerts, check_template, audit),
            bacnet=BacnetConfiguration(storage.bacnet, storage.tenancy, storage.sensors, audit),
            audit=audit,
            bus=bus,
        )
