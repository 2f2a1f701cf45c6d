"""A local fake of Namecheap's XML API, for tests: a real HTTP server on 127.0.0.1.

GET or POST (form-encoded) /xml.response with the global parameters ApiUser, ApiKey,
UserName, ClientIp and Command, answering the documented <ApiResponse> envelope:
Status="OK" with <CommandResponse Type="..."> and the command's result element, or
Status="ERROR" with <Errors><Error Number="...">. Commands: namecheap.domains.check,
create, transfer.create, renew, dns.getList, dns.setCustom, dns.setDefault,
dns.getEmailForwarding, dns.setEmailForwarding, getRegistrarLock, setRegistrarLock,
getInfo, and namecheap.whoisguard.getList, enable, disable.

State: `domains` (ours: name -> dict with expires, locked, nameservers, custom_dns,
status, whoisguard {"id", "enabled", "email"}, forwards {mailbox: address}), `taken`
(registered elsewhere), `premium`. Every domain of ours has a WhoisGuard allotted
(off), as Namecheap gives one free with each registration. `failure`: "http_500" or
"slow"; `refusals`: command -> (error number, text) answered as Status="ERROR";
`unlisted_whoisguard`: names whose getInfo shows no WhoisGuard id (only getList has it).
Every request is kept in `requests` as (method, params)."""
from __future__ import annotations

import threading
import time
from datetime import date
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape, quoteattr

import pytest

from tests.fakes.base import FakeHandler, FakeServer, serving

API_USER, API_KEY, CLIENT_IP = "tallyapi", "nc-secret-key-123", "203.0.113.7"
CONTACT_FIELDS = ("FirstName", "LastName", "Address1", "City", "StateProvince", "PostalCode",
                  "Country", "Phone", "EmailAddress")
XML = "text/xml; charset=utf-8"
DEFAULT_NAMESERVERS = ("dns1.registrar-servers.com", "dns2.registrar-servers.com")
TRANSFERABLE = {"com", "net", "org", "info", "biz", "us", "co", "me", "tv", "cc", "ca", "mobi"}


class NamecheapError(Exception):
    def __init__(self, number: str, text: str):
        super().__init__(text)
        self.number, self.text = number, text


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _us_date(day: date) -> str:
    return f"{day.month:02d}/{day.day:02d}/{day.year}"


class FakeNamecheap(FakeServer):
    def __init__(self) -> None:
        super().__init__(_handler_for(self))
        self.domains: dict[str, dict] = {}
        self.taken: set[str] = set()
        self.premium: set[str] = set()
        self.failure: str | None = None
        self.refusals: dict[str, tuple[str, str]] = {}
        self.unlisted_whoisguard: set[str] = set()
        self.requests: list[tuple[str, dict]] = []
        self.today = date.today()
        self._next_id = 1000
        self._lock = threading.Lock()
        self.url = self.base_url + "/xml.response"

    def own(self, name: str, expires: date, locked: bool = True,
            nameservers: tuple[str, ...] = DEFAULT_NAMESERVERS) -> None:
        self.domains[name] = {"expires": expires, "locked": locked,
                              "nameservers": list(nameservers),
                              "custom_dns": tuple(nameservers) != DEFAULT_NAMESERVERS,
                              "status": "Ok", "id": self._id(), **self._services()}

    def _services(self) -> dict:
        return {"whoisguard": {"id": self._id(), "enabled": False, "email": ""}, "forwards": {}}

    def commands(self) -> list[str]:
        return [params.get("Command") for _, params in self.requests]

    def _id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    # The protocol

    def handle(self, params: dict) -> str:
        if params.get("ApiUser") != API_USER or params.get("UserName") != API_USER:
            raise NamecheapError("1011102", "Parameter APIUser is invalid")
        if params.get("ApiKey") != API_KEY:
            raise NamecheapError("1011102", "API Key is invalid or API access has not been enabled")
        if params.get("ClientIp") != CLIENT_IP:
            raise NamecheapError("1011150", f"Invalid request IP: {params.get('ClientIp')}")
        command = params.get("Command") or ""
        if command in self.refusals:
            raise NamecheapError(*self.refusals[command])
        handler = getattr(self, "cmd_" + command.removeprefix("namecheap.").replace(".", "_"), None)
        if handler is None:
            raise NamecheapError("1010900", f"Invalid command: {command}")
        with self._lock:
            return handler(params)

    def _required(self, params: dict, *names: str) -> None:
        for name in names:
            if not (params.get(name) or "").strip():
                raise NamecheapError("2010324", f"{name} is Missing")

    def _ours(self, name: str) -> dict:
        if name not in self.domains:
            if name in self.taken:
                raise NamecheapError("2016166", "Domain is not associated with your account")
            raise NamecheapError("2019166", "Domain not found")
        return self.domains[name]

    def _from_sld_tld(self, params: dict) -> str:
        self._required(params, "SLD", "TLD")
        return f"{params['SLD']}.{params['TLD']}".lower()

    def cmd_domains_check(self, params: dict) -> str:
        self._required(params, "DomainList")
        rows = []
        for name in params["DomainList"].split(","):
            name = name.strip().lower()
            available = name not in self.domains and name not in self.taken
            premium = name in self.premium
            rows.append(
                f'<DomainCheckResult Domain="{escape(name)}" Available="{str(available).lower()}" '
                f'ErrorNo="0" Description="" IsPremiumName="{str(premium).lower()}" '
                f'PremiumRegistrationPrice="{"1300.0000" if premium else "0"}" '
                'PremiumRenewalPrice="0" PremiumRestorePrice="0" PremiumTransferPrice="0" '
                'IcannFee="0" EapFee="0"/>')
        return "".join(rows)

    def cmd_domains_create(self, params: dict) -> str:
        self._required(params, "DomainName", "Years")
        for role in ("Registrant", "Tech", "Admin", "AuxBilling"):
            self._required(params, *(role + field for field in CONTACT_FIELDS))
            phone = params[f"{role}Phone"]
            if not (phone.startswith("+") and "." in phone):
                raise NamecheapError("2015182", f"{role}Phone: phone number is invalid, "
                                                "use the format +NNN.NNNNNNNNNN")
        name = params["DomainName"].lower()
        if name in self.domains or name in self.taken:
            raise NamecheapError("3031510", f"Domain {name} is not available for registration")
        years = int(params["Years"])
        nameservers = [ns for ns in (params.get("Nameservers") or "").split(",") if ns]
        self.own(name, _add_years(self.today, years), locked=False,
                 nameservers=tuple(nameservers or ("dns1.registrar-servers.com",
                                                   "dns2.registrar-servers.com")))
        self.domains[name]["custom_dns"] = bool(nameservers)
        self.domains[name]["registrant"] = {field: params[f"Registrant{field}"]
                                            for field in CONTACT_FIELDS}
        return (f'<DomainCreateResult Domain="{escape(name)}" Registered="true" '
                f'ChargedAmount="{9.06 * years:.4f}" DomainID="{self.domains[name]["id"]}" '
                f'OrderID="{self._id()}" TransactionID="{self._id()}" '
                'WhoisguardEnable="false" FreePositiveSSL="false" NonRealTimeDomain="false"/>')

    def cmd_domains_transfer_create(self, params: dict) -> str:
        self._required(params, "DomainName", "Years", "EPPCode")
        name = params["DomainName"].lower()
        if name.rsplit(".", 1)[-1] not in TRANSFERABLE:
            raise NamecheapError("2030166", "Domain cannot be transferred through the API")
        if name in self.domains:
            raise NamecheapError("2011170", f"{name} is in your account already")
        transfer_id = self._id()
        self.domains[name] = {"expires": _add_years(self.today, 1), "locked": False,
                              "nameservers": ["dns1.registrar-servers.com",
                                              "dns2.registrar-servers.com"],
                              "custom_dns": False, "status": "Ok", "id": self._id(),
                              "epp_code": params["EPPCode"], "transfer_id": transfer_id,
                              **self._services()}
        return (f'<DomainTransferCreateResult DomainName="{escape(name)}" Transfer="true" '
                f'TransferID="{transfer_id}" StatusID="5" OrderID="{self._id()}" '
                f'TransactionID="{self._id()}" ChargedAmount="8.9800"/>')

    def cmd_domains_renew(self, params: dict) -> str:
        self._required(params, "DomainName", "Years")
        name = params["DomainName"].lower()
        domain = self._ours(name)
        domain["expires"] = _add_years(domain["expires"], int(params["Years"]))
        domain["status"] = "Ok"
        return (f'<DomainRenewResult DomainName="{escape(name)}" DomainID="{domain["id"]}" '
                f'Renew="true" OrderID="{self._id()}" TransactionID="{self._id()}" '
                f'ChargedAmount="9.0600"><DomainDetails><ExpiredDate>'
                f'{_us_date(domain["expires"])} 11:31:13 AM</ExpiredDate>'
                '<NumYears>0</NumYears></DomainDetails></DomainRenewResult>')

    def cmd_domains_dns_getList(self, params: dict) -> str:
        name = self._from_sld_tld(params)
        domain = self._ours(name)
        servers = "".join(f"<Nameserver>{escape(ns)}</Nameserver>" for ns in domain["nameservers"])
        using_ours = "false" if domain["custom_dns"] else "true"
        return (f'<DomainDNSGetListResult Domain="{escape(name)}" IsUsingOurDNS="{using_ours}">'
                f"{servers}</DomainDNSGetListResult>")

    def cmd_domains_dns_setCustom(self, params: dict) -> str:
        name = self._from_sld_tld(params)
        self._required(params, "Nameservers")
        domain = self._ours(name)
        domain["nameservers"] = [ns.strip() for ns in params["Nameservers"].split(",") if ns.strip()]
        domain["custom_dns"] = True
        return f'<DomainDNSSetCustomResult Domain="{escape(name)}" Updated="true"/>'

    def cmd_domains_getRegistrarLock(self, params: dict) -> str:
        self._required(params, "DomainName")
        name = params["DomainName"].lower()
        locked = self._ours(name)["locked"]
        return (f'<DomainGetRegistrarLockResult Domain="{escape(name)}" '
                f'RegistrarLockStatus="{str(locked).lower()}"/>')

    def cmd_domains_setRegistrarLock(self, params: dict) -> str:
        self._required(params, "DomainName")
        name = params["DomainName"].lower()
        action = (params.get("LockAction") or "LOCK").upper()
        if action not in {"LOCK", "UNLOCK"}:
            raise NamecheapError("2015278", "Invalid data specified for LockAction")
        self._ours(name)["locked"] = action == "LOCK"
        return f'<DomainSetRegistrarLockResult Domain="{escape(name)}" IsSuccess="true"/>'

    def cmd_domains_getInfo(self, params: dict) -> str:
        self._required(params, "DomainName")
        name = params["DomainName"].lower()
        domain = self._ours(name)
        guard = domain["whoisguard"]
        shown_id = "0" if name in self.unlisted_whoisguard else guard["id"]
        return (f'<DomainGetInfoResult Status={quoteattr(domain["status"])} ID="{domain["id"]}" '
                f'DomainName="{escape(name)}" OwnerName="{API_USER}" IsOwner="true" '
                'IsPremium="false"><DomainDetails>'
                f'<CreatedDate>{_us_date(self.today)}</CreatedDate>'
                f'<ExpiredDate>{_us_date(domain["expires"])}</ExpiredDate>'
                '<NumYears>0</NumYears></DomainDetails><LockDetails/>'
                f'<Whoisguard Enabled="{str(guard["enabled"])}"><ID>{shown_id}</ID>'
                f'<ExpiredDate>{_us_date(domain["expires"])}</ExpiredDate></Whoisguard>'
                f'<DnsDetails ProviderType="{"CUSTOM" if domain["custom_dns"] else "FREE"}" '
                f'IsUsingOurDNS="{str(not domain["custom_dns"]).lower()}"/>'
                '<Modificationrights All="true"/></DomainGetInfoResult>')

    def cmd_domains_dns_setDefault(self, params: dict) -> str:
        name = self._from_sld_tld(params)
        domain = self._ours(name)
        domain["nameservers"], domain["custom_dns"] = list(DEFAULT_NAMESERVERS), False
        return f'<DomainDNSSetDefaultResult Domain="{escape(name)}" Updated="true"/>'

    def _on_our_dns(self, params: dict) -> tuple[str, dict]:
        self._required(params, "DomainName")
        name = params["DomainName"].lower()
        domain = self._ours(name)
        if domain["custom_dns"]:
            raise NamecheapError("2030288", "Cannot complete this command as this domain is "
                                            "not using proper DNS servers")
        return name, domain

    def cmd_domains_dns_getEmailForwarding(self, params: dict) -> str:
        name, domain = self._on_our_dns(params)
        rows = "".join(f'<Forward mailbox={quoteattr(box)}>{escape(to)}</Forward>'
                       for box, to in domain["forwards"].items())
        return (f'<DomainDNSGetEmailForwardingResult Domain="{escape(name)}">{rows}'
                "</DomainDNSGetEmailForwardingResult>")

    def cmd_domains_dns_setEmailForwarding(self, params: dict) -> str:
        name, domain = self._on_our_dns(params)
        # Parameter names are case-insensitive at Namecheap (its own example writes mailbox1).
        lowered = {key.lower(): value for key, value in params.items()}
        forwards, index = {}, 1
        while f"mailbox{index}" in lowered:
            if not lowered.get(f"forwardto{index}"):
                raise NamecheapError("2010324", f"ForwardTo{index} is Missing")
            forwards[lowered[f"mailbox{index}"]] = lowered[f"forwardto{index}"]
            index += 1
        if not forwards:
            raise NamecheapError("2010324", "MailBox1 is Missing")
        domain["forwards"] = forwards
        return f'<DomainDNSSetEmailForwardingResult Domain="{escape(name)}" IsSuccess="true"/>'

    def _guard(self, params: dict) -> tuple[str, dict]:
        self._required(params, "WhoisguardID")
        for name, domain in self.domains.items():
            if domain["whoisguard"]["id"] == params["WhoisguardID"]:
                return name, domain["whoisguard"]
        raise NamecheapError("2011331", "WhoisGuard does not exist or is not associated with "
                                        "this user")

    def cmd_whoisguard_getList(self, params: dict) -> str:
        page = int(params.get("Page") or 1)
        size = min(max(int(params.get("PageSize") or 20), 2), 100)
        rows = [(name, domain["whoisguard"]) for name, domain in sorted(self.domains.items())]
        shown = rows[(page - 1) * size:page * size]
        items = "".join(
            f'<Whoisguard ID="{guard["id"]}" DomainName="{escape(name)}" '
            f'Created="{_us_date(self.today)}" Expires="{_us_date(self.domains[name]["expires"])}" '
            f'Status="{"enabled" if guard["enabled"] else "disabled"}"/>' for name, guard in shown)
        return (f"<WhoisguardGetListResult>{items}</WhoisguardGetListResult>"
                f"<Paging><TotalItems>{len(rows)}</TotalItems><CurrentPage>{page}</CurrentPage>"
                f"<PageSize>{size}</PageSize></Paging>")

    def cmd_whoisguard_enable(self, params: dict) -> str:
        name, guard = self._guard(params)
        self._required(params, "ForwardedToEmail")
        if "@" not in params["ForwardedToEmail"]:
            raise NamecheapError("2011369", "WhoisGuard forwarded email address is not valid")
        if guard["enabled"]:
            raise NamecheapError("2011331", "WhoisGuard is already enabled")
        guard["enabled"], guard["email"] = True, params["ForwardedToEmail"]
        return f'<WhoisguardEnableResult DomainName="{escape(name)}" IsSuccess="true"/>'

    def cmd_whoisguard_disable(self, params: dict) -> str:
        name, guard = self._guard(params)
        if not guard["enabled"]:
            raise NamecheapError("2011331", "WhoisGuard is already disabled")
        guard["enabled"] = False
        return f'<WhoisguardDisableResult DomainName="{escape(name)}" IsSuccess="true"/>'


def envelope(command: str, body: str | None, error: NamecheapError | None) -> str:
    status = "ERROR" if error else "OK"
    errors = (f'<Errors><Error Number="{error.number}">{escape(error.text)}</Error></Errors>'
              if error else "<Errors />")
    response = (f'<CommandResponse Type="{escape(command)}">{body}</CommandResponse>'
                if body is not None else "")
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            f'<ApiResponse xmlns="http://api.namecheap.com/xml.response" Status="{status}">'
            f"{errors}<Warnings /><RequestedCommand>{escape(command)}</RequestedCommand>"
            f"{response}<Server>FAKE-NAMECHEAP</Server><GMTTimeDifference>--5:00"
            "</GMTTimeDifference><ExecutionTime>0.01</ExecutionTime></ApiResponse>")


def _handler_for(fake: FakeNamecheap):
    class Handler(FakeHandler):
        def do_GET(self) -> None:
            self._answer("GET", dict(parse_qsl(urlsplit(self.path).query)))

        def do_POST(self) -> None:
            raw = self.read_body().decode()
            self._answer("POST", dict(parse_qsl(raw)))

        def _answer(self, method: str, params: dict) -> None:
            fake.requests.append((method, params))
            if fake.failure == "slow":
                time.sleep(2)
            if fake.failure == "http_500" or urlsplit(self.path).path != "/xml.response":
                return self.send(500 if fake.failure else 404, b"Server Error", XML)
            command = (params.get("Command") or "").lower()
            try:
                payload = envelope(params.get("Command") or "", fake.handle(params), None)
            except NamecheapError as error:
                payload = envelope(command, None, error)
            self.send(200, payload.encode(), XML)

    return Handler


@pytest.fixture
def fake_namecheap(app, db):
    """A running fake Namecheap, an enabled "namecheap" Registrar row pointed at it and
    the app's ClientIp set to the whitelisted address."""
    from app.models.domains import Registrar

    fake = FakeNamecheap()
    with serving(app, fake, NAMECHEAP_CLIENT_IP=CLIENT_IP, NAMECHEAP_TIMEOUT_SECONDS=1):
        db.session.add(Registrar(module="namecheap", display_name="Namecheap", enabled=True,
                                 test_mode=True, username=API_USER, api_key=API_KEY, api_url=fake.url))
        db.session.flush()
        yield fake
