"""The demo business behind `flask demo seed`: a small, realistic hosting company.

Deterministic: every choice comes from random.Random with fixed seeds, and every
date is relative to date.today(), so the demo always has services due soon, overdue
invoices and recent tickets. Three separate random streams keep the structure
(who owns what, in which status) independent of the date the demo is seeded on.

Reference data (currencies, catalog, TLDs, taxes, settings, templates...) is created
only where it is missing; the business itself (clients and all they own) is added
once, in one transaction: a failure leaves nothing half-seeded.
"""
from __future__ import annotations

import random
import string
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import func, select

from app.activity import Actor, log
from app.auth.bootstrap import create_staff_user
from app.billing.cycles import add_months, months_in_cycle
from app.billing.money import to_money
from app.billing.numbering import counter_key, format_invoice_number
from app.billing.tax import TaxRate, compute_invoice_taxes, find_tax_rates
from app.extensions import db
from app.models.base import utcnow
from app.models.billing import (
    BillableItem, CreditEntry, Invoice, InvoiceCounter, InvoiceItem, InvoiceReminder,
    InvoiceStatus, ItemType, PaymentGateway, Quote, QuoteItem, TaxRule, Transaction,
)
from app.models.catalog import (
    Addon, AddonPricing, ConfigOption, ConfigOptionGroup, ConfigOptionPricing,
    ConfigOptionValue, Currency, ExchangeRate, Product, ProductGroup, ProductPricing, Server,
    ServerGroup,
)
from app.models.clients import CLIENT_PERMISSIONS, Client, ClientGroup, ClientNote, ClientUser, Contact
from app.models.domains import Domain, DomainAddon, DomainAddonPricing, Registrar, Tld, TldPricing
from app.models.orders import (
    CancellationRequest, Order, OrderItem, Promotion, PromotionType, Service, ServiceAddon,
    ServiceConfigOption,
)
from app.models.support import (
    Announcement, KbArticle, KbCategory, SupportDepartment, Ticket, TicketNote, TicketReply,
)
from app.models.system import AutomationRun, EmailTemplate, Setting

SEED = 4242
COMPANY_NAME = "Tallyhost Demo Hosting"
INVOICE_NUMBER_FORMAT = "INV-{YEAR}-{NUMBER:5}"
CREATE_INVOICE_DAYS_BEFORE = 14
CREATE_DOMAIN_INVOICE_DAYS_BEFORE = 30
DEMO_CLIENT_EMAIL = "demo@example.com"
DEMO_CLIENT_PASSWORD = "demo123"
SUSPENSION_REASON = "Overdue on Payment"
NAMESERVERS = ("ns1.example.net", "ns2.example.net")
CENT = Decimal("0.01")

STAFF_USERS = (
    # username, password, role, first name, last name
    ("admin", "admin123", "Admin", "Sam", "Carter"),
    ("finance", "finance123", "Finance", "Priya", "Nair"),
    ("support", "support123", "Support", "Tom", "Becker"),
    ("manager", "manager123", "Manager", "Lena", "Hoffmann"),
)

# code, prefix, rate against USD, default
CURRENCIES = (
    ("USD", "$", Decimal("1"), True),
    ("EUR", "€", Decimal("0.92"), False),
    ("GBP", "£", Decimal("0.79"), False),
)
CURRENCY_OF_COUNTRY = {"DE": "EUR", "FR": "EUR", "NL": "EUR", "GB": "GBP"}

# Percent off the monthly price: longer commitments cost less per month.
CYCLE_DISCOUNT = {
    "Monthly": Decimal("0"),
    "Quarterly": Decimal("3"),
    "Semi-Annually": Decimal("5"),
    "Annually": Decimal("10"),
    "Biennially": Decimal("15"),
    "Triennially": Decimal("20"),
}
CYCLES = tuple(CYCLE_DISCOUNT)
# Setup fees apply to short cycles only; a year or more waives them.
SETUP_FEE_CYCLES = ("Monthly", "Quarterly", "Semi-Annually")

PRODUCT_GROUPS = (
    ("Shared Hosting", "shared-hosting", "Web hosting that just works",
     "cPanel, free SSL and daily backups on every plan"),
    ("Reseller Hosting", "reseller-hosting", "Start your own hosting business",
     "White-label DirectAdmin reseller accounts"),
    ("VPS Servers", "vps-servers", "Your own virtual server",
     "NVMe storage, full root access, 1 Gbps network"),
)


def _prices(usd: str, eur: str, gbp: str) -> dict[str, Decimal]:
    return {"USD": Decimal(usd), "EUR": Decimal(eur), "GBP": Decimal(gbp)}


@dataclass(frozen=True)
class ProductSpec:
    slug: str
    group_slug: str
    name: str
    type: str
    module: str
    monthly: dict[str, Decimal]
    setup: dict[str, Decimal] | None
    description: str
    weight: int  # how often demo clients buy it


PRODUCTS = (
    ProductSpec("starter", "shared-hosting", "Starter", "hosting", "cpanel",
                _prices("3.99", "3.69", "3.19"), None,
                "1 website\n10 GB NVMe storage\n5 email accounts\nFree SSL certificate", 26),
    ProductSpec("pro", "shared-hosting", "Pro", "hosting", "cpanel",
                _prices("7.99", "7.39", "6.29"), None,
                "10 websites\n50 GB NVMe storage\nUnlimited email accounts\nFree SSL certificates", 24),
    ProductSpec("business", "shared-hosting", "Business", "hosting", "cpanel",
                _prices("14.99", "13.79", "11.89"), None,
                "Unlimited websites\n150 GB NVMe storage\nPriority support\nStaging and Git deployment", 14),
    ProductSpec("reseller-bronze", "reseller-hosting", "Reseller Bronze", "reseller", "directadmin",
                _prices("24.99", "22.99", "19.79"), None,
                "25 client accounts\n100 GB storage\nWhite-label nameservers", 8),
    ProductSpec("reseller-silver", "reseller-hosting", "Reseller Silver", "reseller", "directadmin",
                _prices("44.99", "41.39", "35.59"), None,
                "60 client accounts\n250 GB storage\nWhite-label nameservers\nFree WHMCS-style billing", 5),
    ProductSpec("vps-2gb", "vps-servers", "VPS 2GB", "server", "manual",
                _prices("12.00", "11.00", "9.50"), _prices("10.00", "9.00", "8.00"),
                "2 vCPU\n2 GB RAM\n40 GB NVMe\n2 TB traffic", 10),
    ProductSpec("vps-4gb", "vps-servers", "VPS 4GB", "server", "manual",
                _prices("24.00", "22.00", "19.00"), _prices("15.00", "14.00", "12.00"),
                "3 vCPU\n4 GB RAM\n80 GB NVMe\n4 TB traffic", 8),
    ProductSpec("vps-8gb", "vps-servers", "VPS 8GB", "server", "manual",
                _prices("48.00", "44.00", "38.00"), _prices("20.00", "18.00", "16.00"),
                "4 vCPU\n8 GB RAM\n160 GB NVMe\n8 TB traffic", 4),
)
PRODUCT_BY_SLUG = {spec.slug: spec for spec in PRODUCTS}

# name, monthly USD price (other currencies convert at the currency's rate), products
ADDONS = (
    ("Dedicated IP", "3.00", ("pro", "business", "reseller-bronze", "reseller-silver",
                              "vps-2gb", "vps-4gb", "vps-8gb"),
     "A dedicated IPv4 address for your account."),
    ("SSL Certificate", "4.00", ("starter", "pro", "business", "reseller-bronze", "reseller-silver"),
     "A domain-validated SSL certificate with a site seal."),
    ("Daily Backups", "2.50", tuple(spec.slug for spec in PRODUCTS),
     "Off-site daily backups kept for 30 days, restorable in one click."),
)

VPS_OPTION_GROUP = "VPS Configuration"
# option name, [(value name, monthly USD price)]
VPS_OPTIONS = (
    ("Extra RAM", (("No extra RAM", "0.00"), ("+2 GB RAM", "6.00"), ("+4 GB RAM", "11.00"))),
    ("Operating System", (("Ubuntu 24.04 LTS", "0.00"), ("Debian 12", "0.00"),
                          ("AlmaLinux 9", "0.00"), ("Windows Server 2022", "15.00"))),
)

# name, module, hostname, ip, port, username, password, API token, max accounts, cost
SERVERS = (
    ("cPanel 1", "cpanel", "cp1.example.net", "203.0.113.10", 2087, "root",
     "Demo-WHM-Pass-7431", "DEMOWHMTOKEN7Q4X9K2M", 250, "89.00"),
    ("Plesk 1", "plesk", "plesk1.example.net", "203.0.113.20", 8443, "admin",
     "Demo-Plesk-Pass-2290", "demo-plesk-key-8f3b1c", 150, "79.00"),
    ("DirectAdmin 1", "directadmin", "da1.example.net", "203.0.113.30", 2222, "admin",
     "Demo-DA-Pass-5518", "demo-da-login-key-21a7", 120, "69.00"),
)
SERVER_GROUP_OF_MODULE = {"cpanel": "cPanel Servers", "plesk": "Plesk Servers",
                          "directadmin": "DirectAdmin Servers"}

# The built-in "local" registrar: the demo registers, renews and transfers domains in this
# installation only, with no registrar account (app/registrars/local.py).
REGISTRAR_MODULE = "local"
# extension, register, transfer, renew (USD, one year), label
# Yearly prices of the domain addons in USD (converted like the rest of the catalog).
DOMAIN_ADDON_PRICES = {DomainAddon.DNS_MANAGEMENT: "2.00", DomainAddon.EMAIL_FORWARDING: "1.50",
                       DomainAddon.ID_PROTECTION: "4.99"}

TLDS = (
    (".com", "12.99", "12.99", "14.99", "hot"),
    (".net", "14.99", "14.99", "16.99", None),
    (".org", "13.99", "13.99", "15.99", None),
    (".io", "39.99", "39.99", "44.99", "new"),
    (".eu", "8.99", "8.99", "9.99", "sale"),
)

# level, name, country, state, rate
TAX_RULES = (
    (1, "Sales Tax", "US", "TX", "8.25"),
    (1, "VAT", "GB", None, "20"),
    (1, "VAT", "DE", None, "19"),
    (1, "VAT", "FR", None, "20"),
    (1, "VAT", "NL", None, "21"),
    (1, "GST", "CA", None, "5"),
    (2, "QST", "CA", "QC", "9.975"),
    (1, "GST", "AU", None, "10"),
)

GATEWAYS = (
    ("banktransfer", "Bank Transfer", True,
     "Please transfer the invoice total to:\n"
     "Bank: First Example Bank\nAccount name: Tallyhost Demo Hosting\n"
     "Account number: 000123456789\nRouting (ACH): 110000000\n"
     "IBAN: GB33BUKB20201555555555 (EUR and GBP payments)\n"
     "Quote your invoice number as the payment reference. "
     "Payments are matched within one business day."),
    ("stripe", "Credit / Debit Card", False, None),
    ("paypal", "PayPal", False, None),
    ("authorizenet", "Credit Card (Authorize.net)", False, None),
    ("btcpay", "Bitcoin (BTCPay Server)", False, None),
)
PAYMENT_GATEWAYS = ("banktransfer", "stripe", "paypal")

# WHMCS setting names where WHMCS has one; booleans "on"/"off" as app.settings reads them.
SETTINGS = {
    "CompanyName": COMPANY_NAME,
    "Email": "billing@example.com",
    "Domain": "https://example.com/",
    "SystemURL": "http://127.0.0.1:5000/",
    "InvoicePayTo": "Tallyhost Demo Hosting\n100 Congress Avenue, Suite 200\nAustin, TX 78701\nUnited States",
    "Signature": "The Tallyhost Demo Hosting team",
    "BusinessCountry": "US",
    "BusinessState": "TX",
    "DefaultCurrency": "USD",
    "Language": "en",
    "DateFormat": "YYYY-MM-DD",
    "CreateInvoiceDaysBefore": str(CREATE_INVOICE_DAYS_BEFORE),
    "CreateDomainInvoiceDaysBefore": str(CREATE_DOMAIN_INVOICE_DAYS_BEFORE),
    "InvoiceIncrement": "1",
    "SequentialInvoiceNumbering": "on",
    "InvoiceNumberFormat": INVOICE_NUMBER_FORMAT,
    "InvoiceNumberReset": "never",
    "NumberOnPayment": "off",
    "ContinuousInvoiceGeneration": "off",
    "AutoSuspension": "on",
    "AutoSuspensionDays": "5",
    "AutoTermination": "on",
    "AutoTerminationDays": "30",
    "AutoUnsuspend": "on",
    "SendReminder": "on",
    "SendInvoiceReminderDays": "7",
    "SendFirstOverdueInvoiceReminder": "1",
    "SendSecondOverdueInvoiceReminder": "7",
    "SendThirdOverdueInvoiceReminder": "14",
    "LateFeeType": "Percentage",
    "InvoiceLateFeeAmount": "10",
    "LateFeeMinimum": "5.00",
    "AddLateFeeDays": "7",
    "TaxEnabled": "on",
    "TaxType": "Exclusive",
    "TaxL2Compound": "off",
    "TaxDomains": "on",
    "TaxLateFee": "on",
    "NoAutoApplyCredit": "off",
    "AutoCancellationRequests": "on",
    "OrderDaysGrace": "0",
    "AutoAcceptPaidOrders": "on",
    "CronHour": "9",
    "AllowRegister": "on",
    "AllowTransfer": "on",
    "DefaultNameserver1": NAMESERVERS[0],
    "DefaultNameserver2": NAMESERVERS[1],
    "DomainSyncEnabled": "on",
    "TicketMask": "%A%A%A-%n%n%n%n%n%n",
    "CloseInactiveTickets": "72",
    "CurrencyAutoUpdateExchangeRates": "on",
}

# One conversation per ticket subject: department, subject, opening message, staff
# answer, client follow-up, closing staff answer. {domain} is the client's domain.
TICKET_STORIES = (
    ("Technical Support", "Website shows a 500 Internal Server Error",
     "Since this morning {domain} only shows \"500 Internal Server Error\". I did not change anything. Can you take a look?",
     "Hello, the error log shows a syntax error in .htaccess (line 14, an unsupported php_value directive). I have commented that line out and the site loads again. If a plugin added it, please update that plugin before re-enabling it.",
     "Thanks, the site is back. It was a caching plugin.",
     "Glad to hear it. I will close this ticket; just reply if it happens again."),
    ("Technical Support", "Emails to Gmail go to spam",
     "Everything we send from our @{domain} mailboxes lands in the recipients' spam folder. How can we fix this?",
     "Hello, your domain had no DKIM record and its SPF record did not include our mail servers. I have enabled DKIM signing and published v=spf1 +a +mx include:spf.example.net ~all. Please allow a few hours for DNS to update, then test again with mail-tester.com.",
     "Much better now, score 9.5/10. Should we also add DMARC?",
     "Yes: a TXT record at _dmarc.{domain} with v=DMARC1; p=none; rua=mailto:postmaster@{domain} lets you watch reports first. Our knowledge-base article on SPF, DKIM and DMARC explains the next steps."),
    ("Technical Support", "Cannot connect with SFTP",
     "FileZilla says \"Connection refused\" when I connect to my account on port 21. What am I doing wrong?",
     "Hello, we only accept SFTP on port 22 (plain FTP on port 21 is disabled because it sends passwords unencrypted). In FileZilla use the host sftp://{domain}, your control panel username and port 22.",
     "That worked, thank you!",
     None),
    ("Technical Support", "How do I point my domain to your servers?",
     "I registered {domain} elsewhere. What nameservers should I use so it works with my hosting?",
     "Hello, please set the nameservers at your registrar to ns1.example.net and ns2.example.net. The change usually takes a few hours (up to 48 hours) to be seen everywhere.",
     None, None),
    ("Technical Support", "Website is very slow since yesterday",
     "Pages on {domain} take 8-10 seconds to load since yesterday afternoon.",
     "Hello, your account was hitting its CPU limit because of bots crawling the search page. I have added a rate limit for the worst crawlers; load times are back under a second. We recommend a caching plugin as well.",
     "Still slow on the shop pages for me.",
     None),
    ("Technical Support", "Please install the PHP imagick extension",
     "Our gallery plugin needs the imagick PHP extension. Can you enable it for {domain}?",
     "Hello, imagick can be enabled per account: in the control panel open Select PHP Version, tick imagick and save. I have done it for you on PHP 8.3.",
     None, None),
    ("Technical Support", "VPS does not boot after kernel update",
     "After running apt upgrade and rebooting, my VPS does not come back up. Ping times out.",
     "Hello, I have opened the VNC console: the server stopped at a filesystem check. I ran fsck and it booted normally; all services are up. I suggest taking a snapshot before the next upgrade.",
     None, None),
    ("Billing", "Question about my latest invoice",
     "Why does my latest invoice include tax? I did not see it on the previous one.",
     "Hello, we started charging sales tax for your state this month as the law requires; it is shown as a separate line. If you are tax exempt, please send us your exemption certificate and we will update your account.",
     "Understood, thanks for explaining.",
     None),
    ("Billing", "Change my billing cycle to annual",
     "Can I switch my hosting for {domain} from monthly to annual billing to get the discount?",
     "Hello, yes: from your next due date the service will be billed annually at the annual price (10% cheaper than monthly). I have updated it; your next invoice will be the annual one.",
     None, None),
    ("Billing", "Payment failed but money left my account",
     "My bank shows the payment for my invoice but the invoice is still unpaid in the portal.",
     "Hello, bank transfers take up to one business day to be matched. I can see your payment arrived this morning and have applied it to the invoice; it is now marked paid.",
     "Great, thanks!",
     None),
    ("Sales", "Upgrade from Starter to Pro",
     "We are adding a second website. Can I move from Starter to Pro without downtime?",
     "Hello, yes, upgrades are instant and keep all files, databases and email. Use Upgrade/Downgrade on the service page in the client area; you only pay the prorated difference for the current period.",
     None, None),
    ("Sales", "Do you offer Windows hosting?",
     "We have an ASP.NET application. Do you have Windows hosting plans?",
     "Hello, our shared plans are Linux-based, but our VPS plans can run Windows Server 2022 (selectable as the operating system when ordering). A VPS 4GB is a good starting point for a small ASP.NET application.",
     "What about SQL Server licensing?",
     None),
)

KB_CATEGORIES = (
    ("Getting Started", "First steps with your new hosting account"),
    ("Domains & DNS", "Nameservers, DNS records and domain transfers"),
    ("Email", "Mailboxes, mail clients and deliverability"),
    ("Website & Files", "Uploading files, SSL and backups"),
    ("VPS", "Managing your virtual server"),
    ("Billing", "Invoices, payments and your account"),
)

# category, title, slug, tags, HTML body
KB_ARTICLES = (
    ("Domains & DNS", "How to point your domain to our nameservers", "point-domain-to-nameservers",
     "dns,nameservers,domain",
     "<p>If your domain is registered with another company, change its nameservers so that "
     "the world looks up your website and email on our servers.</p>"
     "<ol><li>Log in to the registrar where you bought the domain.</li>"
     "<li>Find the DNS or nameserver settings of the domain and choose custom nameservers.</li>"
     "<li>Replace the existing entries with <strong>ns1.example.net</strong> and "
     "<strong>ns2.example.net</strong>, then save.</li></ol>"
     "<p>Most changes are visible within a few hours, but allow up to 48 hours for every "
     "resolver to forget the old records. You can check progress with "
     "<code>dig NS yourdomain.com +short</code>.</p>"
     "<p>Domains registered with us already use these nameservers.</p>"),
    ("Domains & DNS", "Adding A, CNAME, MX and TXT records", "dns-records-explained",
     "dns,records,mx,cname",
     "<p>Open <em>Zone Editor</em> in your control panel to manage DNS records.</p>"
     "<ul><li><strong>A</strong> points a name to an IPv4 address, e.g. <code>www</code> to your server IP.</li>"
     "<li><strong>CNAME</strong> makes one name an alias of another, e.g. <code>shop</code> to "
     "<code>shops.myshopify.com</code>. A CNAME cannot sit on the bare domain.</li>"
     "<li><strong>MX</strong> tells other servers where to deliver your email; a lower priority number is tried first.</li>"
     "<li><strong>TXT</strong> holds text such as SPF, DKIM or a site-verification code.</li></ul>"
     "<p>Changes are live on our nameservers at once; other resolvers refresh when the record's TTL expires.</p>"),
    ("Domains & DNS", "Transferring a domain to us", "transfer-domain",
     "domain,transfer,epp",
     "<ol><li>At your current registrar, unlock the domain and turn off WHOIS privacy if it blocks the transfer email.</li>"
     "<li>Ask the registrar for the authorisation (EPP) code.</li>"
     "<li>Order a transfer in our client area and enter the code. A transfer adds one year to the registration.</li>"
     "<li>Approve the confirmation email if one arrives.</li></ol>"
     "<p>Most transfers finish within 5 days. A domain registered or transferred in the last 60 days cannot be moved.</p>"),
    ("Email", "Setting up email in Outlook, Apple Mail or Thunderbird", "email-client-setup",
     "email,imap,smtp,outlook",
     "<p>Create the mailbox under <em>Email Accounts</em> in your control panel first, then use these settings:</p>"
     "<table><tr><th>Setting</th><th>Value</th></tr>"
     "<tr><td>Username</td><td>your full email address</td></tr>"
     "<tr><td>Incoming (IMAP)</td><td>mail.yourdomain.com, port 993, SSL/TLS</td></tr>"
     "<tr><td>Outgoing (SMTP)</td><td>mail.yourdomain.com, port 465 SSL/TLS (or 587 STARTTLS)</td></tr>"
     "<tr><td>SMTP authentication</td><td>on, same username and password</td></tr></table>"
     "<p>Use IMAP rather than POP3 so that your phone and computer see the same folders. "
     "If your ISP blocks port 465, use 587.</p>"),
    ("Email", "SPF, DKIM and DMARC: keeping your email out of spam", "spf-dkim-dmarc",
     "email,spam,spf,dkim,dmarc",
     "<p>Receiving servers check three DNS records before trusting your email:</p>"
     "<ul><li><strong>SPF</strong> lists the servers allowed to send for your domain: "
     "<code>v=spf1 +a +mx include:spf.example.net ~all</code>. Keep one SPF record only.</li>"
     "<li><strong>DKIM</strong> signs each message; enable it under <em>Email Deliverability</em>.</li>"
     "<li><strong>DMARC</strong> says what to do with mail that fails: start with "
     "<code>v=DMARC1; p=none; rua=mailto:postmaster@yourdomain.com</code>, then move to "
     "<code>p=quarantine</code> once reports look clean.</li></ul>"),
    ("Website & Files", "Uploading your website with SFTP", "upload-with-sftp",
     "sftp,filezilla,upload",
     "<p>SFTP encrypts your password and files; plain FTP is disabled.</p>"
     "<ol><li>Install FileZilla (Windows, macOS, Linux) or Cyberduck.</li>"
     "<li>Host: <code>sftp://yourdomain.com</code> (or the server name from your welcome email), "
     "port <strong>22</strong>, your control panel username and password.</li>"
     "<li>Upload the website into <code>public_html</code>; the file <code>index.html</code> or "
     "<code>index.php</code> there is your home page.</li></ol>"
     "<p>For many small files, upload a .zip and extract it with the control panel's File Manager: it is much faster.</p>"),
    ("Website & Files", "Free SSL certificates and forcing HTTPS", "free-ssl-https",
     "ssl,https,letsencrypt",
     "<p>Every domain pointed at our servers gets a free certificate automatically (AutoSSL), "
     "usually within an hour of the DNS change, and renewed before it expires.</p>"
     "<p>To send every visitor to HTTPS, add to the top of <code>public_html/.htaccess</code>:</p>"
     "<pre>RewriteEngine On\nRewriteCond %{HTTPS} off\n"
     "RewriteRule ^ https://%{HTTP_HOST}%{REQUEST_URI} [L,R=301]</pre>"
     "<p>In WordPress also change both addresses under Settings &gt; General to https://.</p>"),
    ("Website & Files", "Creating and restoring backups", "backups",
     "backup,restore",
     "<p>Accounts with the Daily Backups add-on are copied off-site every night and kept for 30 days. "
     "Restore a single file, a database or the whole account from <em>Backups</em> in the control panel.</p>"
     "<p>Before a big change (a theme or plugin update) make your own copy: "
     "<em>Backup Wizard &gt; Full Backup</em> creates an archive you can download.</p>"),
    ("Getting Started", "Installing WordPress in a few clicks", "install-wordpress",
     "wordpress,installer",
     "<ol><li>Open <em>WordPress Manager</em> (Softaculous) in the control panel.</li>"
     "<li>Choose the domain, leave the directory empty to install at the root, and pick an admin username that is not 'admin'.</li>"
     "<li>Save the admin password in a password manager and click Install.</li></ol>"
     "<p>Turn on automatic minor updates and keep the number of plugins small: outdated plugins cause most hacked sites.</p>"),
    ("VPS", "Connecting to your VPS with SSH keys", "vps-ssh-keys",
     "vps,ssh,security",
     "<p>Create a key pair on your computer with <code>ssh-keygen -t ed25519</code>, then copy the "
     "public key to the server with <code>ssh-copy-id root@your-server-ip</code>.</p>"
     "<p>Once key login works, edit <code>/etc/ssh/sshd_config</code>: set "
     "<code>PasswordAuthentication no</code> and reload SSH with <code>systemctl reload ssh</code>. "
     "Keep the console in the client area as a way back in if you lock yourself out.</p>"),
    ("Billing", "Understanding your invoice and paying by bank transfer", "invoices-and-bank-transfer",
     "billing,invoice,payment",
     "<p>Invoices are created 14 days before each due date and emailed to you. Each line shows the "
     "service and the period it pays for; tax is added per your billing address.</p>"
     "<p>To pay by bank transfer, use the account details on the invoice and quote the invoice number as "
     "the reference. Transfers are matched within one business day. Credit on your account is applied "
     "to new invoices automatically.</p>"
     "<p>Services are suspended 5 days after an unpaid due date and terminated after 30 days, so please "
     "contact Billing before then if you need more time.</p>"),
)

ANNOUNCEMENTS = (
    ("Welcome to our new client area",
     "<p>Our client area has a fresh look: manage services, domains, invoices and support tickets from "
     "one place, on any device. Two-factor authentication is now available under Security.</p>", 45),
    ("New: VPS plans with NVMe storage",
     "<p>All VPS plans now run on NVMe storage with twice the traffic allowance, at the same prices. "
     "Existing servers will be migrated free of charge over the coming weeks.</p>", 21),
    ("Scheduled maintenance on cp1.example.net",
     "<p>We will upgrade the kernel of cp1.example.net this Sunday between 02:00 and 03:00 UTC. "
     "Websites may be unavailable for up to 10 minutes during the reboot.</p>", 3),
)


EMAIL_TEMPLATES = (
    # name, type, subject, text body (the HTML body is made from it)
    ("Invoice Created", "invoice", "Customer Invoice {{ invoice_num }}",
     "Dear {{ client_name }},\n\nA new invoice has been created for your account.\n\n"
     "Invoice: {{ invoice_num }}\nAmount due: {{ invoice_total }}\nDue date: {{ invoice_date_due }}\n\n"
     "You can view and pay it in the client area: {{ invoice_link }}"),
    ("Invoice Payment Reminder", "invoice", "Invoice Payment Reminder: {{ invoice_num }}",
     "Dear {{ client_name }},\n\nThis is a friendly reminder that invoice {{ invoice_num }} for "
     "{{ invoice_total }} is due on {{ invoice_date_due }}.\n\nPay online: {{ invoice_link }}"),
    ("First Invoice Overdue Notice", "invoice", "First Overdue Notice: {{ invoice_num }}",
     "Dear {{ client_name }},\n\nOur records show that invoice {{ invoice_num }} for {{ invoice_total }} "
     "was due on {{ invoice_date_due }} and is still unpaid.\n\nPlease pay it as soon as possible: "
     "{{ invoice_link }}"),
    ("Second Invoice Overdue Notice", "invoice", "Second Overdue Notice: {{ invoice_num }}",
     "Dear {{ client_name }},\n\nInvoice {{ invoice_num }} for {{ invoice_total }} (due "
     "{{ invoice_date_due }}) is still unpaid. Services on this invoice may be suspended if payment "
     "is not received.\n\nPay now: {{ invoice_link }}"),
    ("Third Invoice Overdue Notice", "invoice", "Third and Final Overdue Notice: {{ invoice_num }}",
     "Dear {{ client_name }},\n\nThis is the final notice for invoice {{ invoice_num }} for "
     "{{ invoice_total }}, due on {{ invoice_date_due }}. Without payment, the related services will "
     "be terminated and their data deleted.\n\nPay now: {{ invoice_link }}"),
    ("Invoice Payment Confirmation", "invoice", "Invoice Payment Confirmation: {{ invoice_num }}",
     "Dear {{ client_name }},\n\nThank you for your payment of {{ invoice_total }} for invoice "
     "{{ invoice_num }}.\n\nYou can download the paid invoice from the client area: {{ invoice_link }}"),
    ("Hosting Account Welcome Email", "product", "Your new hosting account: {{ service_domain }}",
     "Dear {{ client_name }},\n\nYour {{ service_product_name }} account for {{ service_domain }} "
     "is ready.\n\nControl panel username: {{ service_username }}\nServer: {{ service_server_hostname }}\n"
     "Nameservers: {{ service_ns1 }} and {{ service_ns2 }}\n\nSet or reset your password from the "
     "service page in the client area: {{ portal_url }}"),
    ("Service Suspension Notification", "product", "Service Suspension Notification: {{ service_domain }}",
     "Dear {{ client_name }},\n\nYour {{ service_product_name }} service for {{ service_domain }} has been "
     "suspended.\nReason: {{ suspension_reason }}\n\nPlease contact us or pay any overdue invoice to "
     "restore it: {{ portal_url }}"),
    ("Support Ticket Opened", "support", "[Ticket ID: {{ ticket_id }}] {{ ticket_subject }}",
     "Dear {{ client_name }},\n\nThank you for contacting our {{ ticket_department }} team. Your ticket "
     "{{ ticket_id }} has been opened and we will reply as soon as possible.\n\nSubject: "
     "{{ ticket_subject }}\n\nFollow it here: {{ ticket_link }}"),
    ("Support Ticket Reply", "support", "[Ticket ID: {{ ticket_id }}] {{ ticket_subject }}",
     "{{ ticket_message }}\n\n----------------------------------------------\nTicket ID: {{ ticket_id }}\n"
     "Status: {{ ticket_status }}\nView or reply: {{ ticket_link }}"),
    ("Payment Action Required", "invoice", "Please confirm your payment for invoice {{ invoice_num }}",
     "Dear {{ client_name }},\n\nYour bank asks you to confirm the payment of {{ invoice_total }} for "
     "invoice {{ invoice_num }} through {{ gateway_name }}. Please confirm it here:\n"
     "{{ payment_action_url }}\n\nUntil then the invoice stays unpaid."),
    ("Credit Card Payment Failed", "invoice", "Payment failed for invoice {{ invoice_num }}",
     "Dear {{ client_name }},\n\nWe could not charge your stored card for invoice {{ invoice_num }} "
     "({{ invoice_total }}). Please pay it in the client area or update your card:\n"
     "{{ invoice_link }}"),
    ("Credit Card Expiring Soon", "general", "Your card ending {{ client_cc_number }} expires soon",
     "Dear {{ client_name }},\n\nThe {{ client_cc_type }} card ending {{ client_cc_number }} that we "
     "charge for your services expires at the end of {{ client_cc_expiry }}. Please add a new card in "
     "the client area before then, so your services are not interrupted."),
    ("Password Reset", "general", "Reset your password",
     "Dear {{ client_name }},\n\nSomebody asked to reset the password of your account. If it was you, "
     "open this link within one hour:\n{{ reset_password_link }}\n\nIf not, ignore this email: your "
     "password stays unchanged."),
    ("Order Confirmation", "general", "Order Confirmation #{{ order_number }}",
     "Dear {{ client_name }},\n\nThank you for your order #{{ order_number }} of {{ order_total }}. "
     "We will email you as soon as it is set up.\n\nInvoice: {{ invoice_link }}"),
    ("Client Email Address Verification", "general", "Please confirm your email address",
     "Dear {{ client_name }},\n\nPlease confirm your email address by opening this link within 48 "
     "hours:\n{{ client_email_verification_link }}\n\nYour orders go ahead meanwhile; the link only "
     "confirms that this address is yours."),
    ("Client Signup Email", "general", "Welcome to {{ company_name }}",
     "Dear {{ client_name }},\n\nThank you for creating an account with {{ company_name }}. You can log "
     "in to the client area at {{ portal_url }} with your email address."),
    ("Domain Registration Confirmation", "domain", "Domain Registration Confirmation: {{ domain_name }}",
     "Dear {{ client_name }},\n\n{{ domain_name }} has been registered and will expire on "
     "{{ domain_expiry_date }}. It uses our nameservers; manage its DNS from the client area: {{ portal_url }}"),
    ("Upcoming Domain Renewal Notice", "domain", "Upcoming Domain Renewal Notice: {{ domain_name }}",
     "Dear {{ client_name }},\n\n{{ domain_name }} expires on {{ domain_expiry_date }}. Renew it in time "
     "to keep your website and email working: {{ portal_url }}"),
)

# Who the 49 other clients are: how many per country.
CLIENTS_PER_COUNTRY = (("US", 13), ("GB", 8), ("DE", 7), ("FR", 6), ("NL", 5), ("CA", 5), ("AU", 5))

FIRST_NAMES = {
    "US": ("James", "Olivia", "Michael", "Emma", "David", "Sophia", "Daniel", "Ava", "Chris", "Mia",
           "Ryan", "Harper", "Kevin", "Grace", "Brandon", "Chloe", "Tyler", "Madison"),
    "GB": ("Oliver", "Amelia", "Harry", "Isla", "George", "Poppy", "Jack", "Freya", "Charlie", "Lily",
           "Thomas", "Evie"),
    "DE": ("Lukas", "Anna", "Jonas", "Lea", "Felix", "Laura", "Maximilian", "Sophie", "Paul", "Hannah",
           "Jürgen", "Katrin"),
    "FR": ("Lucas", "Chloé", "Hugo", "Léa", "Louis", "Manon", "Gabriel", "Camille", "Arthur", "Inès",
           "Julien", "Élodie"),
    "NL": ("Daan", "Emma", "Sem", "Julia", "Bram", "Tess", "Thijs", "Sanne", "Ruben", "Fleur"),
    "CA": ("Liam", "Charlotte", "Noah", "Émilie", "William", "Maëlle", "Benjamin", "Juliette", "Samuel",
           "Olivia"),
    "AU": ("Jack", "Ruby", "Cooper", "Matilda", "Lachlan", "Zoe", "Riley", "Isabella", "Mitchell",
           "Sienna"),
}
LAST_NAMES = {
    "US": ("Johnson", "Williams", "Brown", "Miller", "Davis", "Garcia", "Rodriguez", "Wilson",
           "Anderson", "Thomas", "Moore", "Jackson", "Lee", "Thompson", "White", "Harris", "Clark"),
    "GB": ("Smith", "Jones", "Evans", "Davies", "Wright", "Walker", "Roberts", "Hughes", "Edwards",
           "Hall", "Wood", "Turner"),
    "DE": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
           "Koch", "Richter", "Wolf"),
    "FR": ("Martin", "Bernard", "Dubois", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
           "Laurent", "Girard", "Fournier"),
    "NL": ("de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit", "Meijer",
           "Mulder", "de Boer"),
    "CA": ("Tremblay", "Gagnon", "Roy", "Côté", "MacDonald", "Campbell", "Leblanc", "Bouchard",
           "Morrison", "Fraser"),
    "AU": ("Nguyen", "Kelly", "Walsh", "O'Brien", "Ryan", "Murphy", "Mitchell", "Harrison",
           "Stewart", "Campbell"),
}
# city, state, postcode
CITIES = {
    "US": (("Seattle", "WA", "98101"), ("Denver", "CO", "80202"), ("Dallas", "TX", "75201"),
           ("Chicago", "IL", "60601"), ("Boston", "MA", "02108"), ("Houston", "TX", "77002"),
           ("Miami", "FL", "33130"), ("New York", "NY", "10001"), ("San Diego", "CA", "92101"),
           ("Portland", "OR", "97205")),
    "GB": (("London", "Greater London", "EC1A 1BB"), ("Manchester", "Greater Manchester", "M1 1AE"),
           ("Bristol", "Bristol", "BS1 4DJ"), ("Leeds", "West Yorkshire", "LS1 4AP"),
           ("Edinburgh", "Scotland", "EH1 1YZ")),
    "DE": (("Berlin", "Berlin", "10115"), ("München", "Bayern", "80331"), ("Hamburg", "Hamburg", "20095"),
           ("Köln", "Nordrhein-Westfalen", "50667"), ("Frankfurt am Main", "Hessen", "60311")),
    "FR": (("Paris", "Île-de-France", "75002"), ("Lyon", "Auvergne-Rhône-Alpes", "69002"),
           ("Marseille", "Provence-Alpes-Côte d'Azur", "13001"), ("Toulouse", "Occitanie", "31000"),
           ("Bordeaux", "Nouvelle-Aquitaine", "33000")),
    "NL": (("Amsterdam", "Noord-Holland", "1012 AB"), ("Rotterdam", "Zuid-Holland", "3011 AA"),
           ("Utrecht", "Utrecht", "3511 AA"), ("Eindhoven", "Noord-Brabant", "5611 AA")),
    "CA": (("Toronto", "ON", "M5H 2N2"), ("Vancouver", "BC", "V6B 1A1"), ("Montréal", "QC", "H2Y 1C6"),
           ("Calgary", "AB", "T2P 1J9"), ("Québec", "QC", "G1R 4P5")),
    "AU": (("Sydney", "NSW", "2000"), ("Melbourne", "VIC", "3000"), ("Brisbane", "QLD", "4000"),
           ("Perth", "WA", "6000"), ("Adelaide", "SA", "5000")),
}
STREETS = {
    "US": ("Main Street", "Oak Avenue", "Maple Drive", "Pine Street", "Cedar Lane", "Lakeview Drive",
           "Washington Avenue", "Park Road"),
    "GB": ("High Street", "Station Road", "Church Lane", "Victoria Road", "Mill Lane", "King Street"),
    "DE": ("Hauptstraße", "Bahnhofstraße", "Gartenstraße", "Schulstraße", "Lindenstraße", "Bergstraße"),
    "FR": ("rue de la République", "avenue Victor Hugo", "rue Pasteur", "boulevard Voltaire",
           "rue des Lilas"),
    "NL": ("Kerkstraat", "Dorpsstraat", "Stationsweg", "Molenweg", "Julianastraat"),
    "CA": ("King Street West", "rue Sainte-Catherine", "Granville Street", "Bank Street", "Bay Street"),
    "AU": ("George Street", "Collins Street", "Queen Street", "Hay Street", "King William Street"),
}
HOUSE_NUMBER_AFTER_STREET = {"DE", "NL"}
COMPANY_SUFFIX = {"US": "LLC", "GB": "Ltd", "DE": "GmbH", "FR": "SARL", "NL": "B.V.", "CA": "Inc.",
                  "AU": "Pty Ltd"}
COMPANY_FIRST = ("Bright", "Blue", "North", "Summit", "Pixel", "Harbor", "Cedar", "Maple", "Silver",
                 "Urban", "Green", "Coastal", "Golden", "Nimbus", "Atlas", "Copper", "Lumen", "Oakridge")
COMPANY_SECOND = ("Media", "Digital", "Design", "Studio", "Consulting", "Bakery", "Dental", "Outdoors",
                  "Labs", "Marketing", "Photography", "Architects", "Legal", "Fitness", "Coffee", "Travel")
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")

# How a service's story ends, and how many services end that way (the rest are
# active and paid up).
SERVICE_SCENARIOS = {
    "due_soon": 10,          # active, unpaid invoice due within 14 days
    "overdue": 5,            # active, invoice 1-4 days overdue (not yet suspended)
    "suspended": 6,          # invoice 6-25 days overdue, suspended
    "terminated": 5,         # over 30 days overdue, terminated
    "cancel_request": 4,     # cancelled by the client at the end of the period
    "order_cancelled": 2,    # order cancelled before it was ever paid
    "pending": 5,            # new order awaiting payment
    "fraud": 1,              # order flagged as fraud
}
DOMAIN_SCENARIOS = {
    "due_soon": 4, "grace": 3, "redemption": 1, "expired": 3, "cancelled": 3, "pending": 3,
    "pending_transfer": 3,
}
SERVICE_STATUS_OF = {
    "paid": "Active", "due_soon": "Active", "overdue": "Active", "suspended": "Suspended",
    "terminated": "Terminated", "cancel_request": "Cancelled", "order_cancelled": "Cancelled",
    "pending": "Pending", "fraud": "Fraud",
}
DOMAIN_STATUS_OF = {
    "active": "Active", "due_soon": "Active", "grace": "Grace", "redemption": "Redemption",
    "expired": "Expired", "cancelled": "Cancelled", "pending": "Pending",
    "pending_transfer": "Pending Transfer",
}
ORDER_STATUS_OF = {"pending": "Pending", "order_cancelled": "Cancelled", "fraud": "Fraud"}
# How many past periods a service may have been paid for, by cycle length in months.
MAX_PAID_PERIODS = {1: 14, 3: 8, 6: 5, 12: 3, 24: 1, 36: 1}
CYCLE_WEIGHTS = {"shared": (40, 10, 8, 30, 7, 5), "other": (70, 8, 4, 14, 2, 2)}
TICKET_STATUSES = (("Open", 5), ("Answered", 6), ("Customer-Reply", 5), ("In Progress", 4),
                   ("On Hold", 3), ("Closed", 7))
# How long ago tickets in each status were opened (days). Answered tickets stay inside
# the CloseInactiveTickets window, so the first daily run does not close them at once.
TICKET_AGE_DAYS = {"Open": (0, 2), "Answered": (0, 1), "Customer-Reply": (0, 6), "In Progress": (0, 5),
                   "On Hold": (3, 15), "Closed": (8, 60)}


def seed_demo(only_if_empty: bool = False) -> str:
    """Fill the database with the demo business; a one-paragraph summary of what was done.

    With only_if_empty, nothing at all happens when any client exists. Otherwise
    missing reference data is added, and the business (clients and all they own)
    is added unless the demo client exists already, so a second call never
    duplicates or crashes."""
    existing_clients = db.session.scalar(select(func.count(Client.id)))
    if only_if_empty and existing_clients:
        return (f"Demo data not seeded: the database already has {existing_clients} client(s), "
                "and only an empty database gets the demo business.")
    today = date.today()
    try:
        reference = _seed_reference(today)
        db.session.commit()
        users, skipped_users = _seed_users()
        if _business_exists():
            return (f"Demo business already present (client {DEMO_CLIENT_EMAIL} exists): missing "
                    "reference data was added, no client, invoice or ticket was added.")
        _BusinessBuilder(reference, users, today).build()
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return _summary(skipped_users)


# --- reference data -----------------------------------------------------------------


@dataclass
class _Reference:
    currencies: dict[str, Currency]
    client_groups: dict[str, ClientGroup]
    products: dict[str, Product]
    group_names: dict[str, str]  # product slug -> product group name
    addons: dict[str, Addon]
    options: dict[str, tuple[ConfigOption, list[ConfigOptionValue]]]
    option_monthly: dict[int, Decimal]  # config option value id -> monthly USD
    servers: dict[str, Server]
    tlds: dict[str, Tld]
    tax_rules: list[TaxRule]
    departments: dict[str, SupportDepartment]


def _get_or_add(model, lookup: dict, **values):
    """(row, created): the row matching lookup, or a new one added to the session."""
    row = db.session.query(model).filter_by(**lookup).first()
    if row is not None:
        return row, False
    row = model(**lookup, **values)
    db.session.add(row)
    return row, True


def cycle_price(monthly: Decimal, cycle: str) -> Decimal:
    """The price of a cycle from a monthly price, with the cycle's discount, rounded half-up."""
    months = months_in_cycle(cycle)
    return to_money(monthly * months * (100 - CYCLE_DISCOUNT[cycle]) / 100)


def _converted(usd: Decimal, rate: Decimal) -> Decimal:
    return to_money(usd * rate)


def _seed_reference(today: date) -> _Reference:
    currencies = _seed_currencies(today)
    groups = {}
    for name, discount, colour in (("VIP", "10", "#d4a017"), ("Resellers", "0", "#1f77b4")):
        groups[name], _ = _get_or_add(ClientGroup, {"name": name}, discount_percent=Decimal(discount),
                                      colour=colour, exempt_from_auto_suspend=False)
    servers, server_groups = _seed_servers()
    products, group_names = _seed_products(currencies, server_groups)
    options, option_monthly = _seed_config_options(currencies, products)
    addons = _seed_addons(currencies, products)
    tlds = _seed_domains_catalog(currencies)
    _seed_promotions(today, products)
    tax_rules = _seed_taxes()
    _seed_gateways()
    _seed_settings()
    _seed_email_templates()
    departments = _seed_departments()
    _seed_knowledge_base(today)
    db.session.flush()
    return _Reference(currencies, groups, products, group_names, addons, options, option_monthly,
                      servers, tlds, tax_rules, departments)


def _seed_currencies(today: date) -> dict[str, Currency]:
    has_default = db.session.query(Currency.id).filter_by(is_default=True).first() is not None
    currencies = {}
    for code, prefix, rate, default in CURRENCIES:
        currencies[code], _ = _get_or_add(Currency, {"code": code}, prefix=prefix, suffix="",
                                          decimal_places=2, rate=rate,
                                          is_default=default and not has_default)
    db.session.flush()
    known = {tuple(row) for row in db.session.execute(select(ExchangeRate.currency_id, ExchangeRate.day))}
    # A gentle deterministic drift over the month, ending on today's configured rate.
    drift = random.Random(SEED + 7)
    for code, currency in currencies.items():
        rate = currency.rate
        for days_ago in range(30):
            day = today - timedelta(days=days_ago)
            if (currency.id, day) not in known:
                db.session.add(ExchangeRate(currency_id=currency.id, day=day, rate=rate))
            if code != "USD":
                step = Decimal(drift.randint(-40, 40)) / Decimal(10000)
                rate = (rate + step).quantize(Decimal("0.000001"))
    return currencies


def _seed_servers() -> tuple[dict[str, Server], dict[str, ServerGroup]]:
    servers, groups = {}, {}
    for (name, module, hostname, ip, port, username, password, token, max_accounts,
         cost) in SERVERS:
        server, created = _get_or_add(
            Server, {"name": name}, hostname=hostname, ip_address=ip, module=module,
            username=username, password=password, access_hash=token, port=port, secure=True,
            max_accounts=max_accounts, nameserver1=NAMESERVERS[0], nameserver2=NAMESERVERS[1],
            monthly_cost=Decimal(cost))
        group, group_created = _get_or_add(ServerGroup, {"name": SERVER_GROUP_OF_MODULE[module]},
                                           fill_type="least_full")
        if created or group_created:
            group.servers.append(server)
        servers[module], groups[module] = server, group
    return servers, groups


def _seed_products(currencies, server_groups) -> tuple[dict[str, Product], dict[str, str]]:
    groups = {}
    for order, (name, slug, headline, tagline) in enumerate(PRODUCT_GROUPS):
        groups[slug], _ = _get_or_add(ProductGroup, {"slug": slug}, name=name, headline=headline,
                                      tagline=tagline, sort_order=order)
    db.session.flush()
    products, group_names = {}, {}
    for order, spec in enumerate(PRODUCTS):
        server_group = server_groups.get(spec.module)
        product, created = _get_or_add(
            Product, {"slug": spec.slug}, group_id=groups[spec.group_slug].id, type=spec.type,
            name=spec.name, description=spec.description, payment_type="recurring",
            module=spec.module, module_package=spec.slug,
            server_group_id=server_group.id if server_group else None,
            auto_setup="accept" if spec.module == "manual" else "payment",
            require_domain=spec.type != "server",
            welcome_email="Hosting Account Welcome Email", sort_order=order)
        if created:
            for code, currency in currencies.items():
                for cycle in CYCLES:
                    setup = spec.setup[code] if spec.setup and cycle in SETUP_FEE_CYCLES else Decimal("0.00")
                    product.pricing.append(ProductPricing(
                        currency_id=currency.id, cycle=cycle, price=cycle_price(spec.monthly[code], cycle),
                        setup_fee=setup))
        products[spec.slug] = product
        group_names[spec.slug] = groups[spec.group_slug].name
    return products, group_names


def _seed_config_options(currencies, products):
    group, created = _get_or_add(ConfigOptionGroup, {"name": VPS_OPTION_GROUP},
                                 description="Resources and operating system of a VPS")
    if created:
        group.products = [products[slug] for slug in products if slug.startswith("vps-")]
        for order, (option_name, values) in enumerate(VPS_OPTIONS):
            option = ConfigOption(name=option_name, option_type="dropdown", sort_order=order)
            group.options.append(option)
            for value_order, (value_name, monthly_usd) in enumerate(values):
                value = ConfigOptionValue(name=value_name, sort_order=value_order)
                option.values.append(value)
                for currency in currencies.values():
                    monthly = _converted(Decimal(monthly_usd), currency.rate)
                    for cycle in CYCLES:
                        value.pricing.append(ConfigOptionPricing(
                            currency_id=currency.id, cycle=cycle, price=cycle_price(monthly, cycle)))
    db.session.flush()
    options, option_monthly = {}, {}
    monthly_of = {(option, value): Decimal(price) for option, values in VPS_OPTIONS
                  for value, price in values}
    for option in group.options:
        values = sorted(option.values, key=lambda v: v.sort_order)
        options[option.name] = (option, values)
        for value in values:
            option_monthly[value.id] = monthly_of.get((option.name, value.name), Decimal("0.00"))
    return options, option_monthly


def _seed_addons(currencies, products) -> dict[str, Addon]:
    addons = {}
    for name, monthly_usd, product_slugs, description in ADDONS:
        addon, created = _get_or_add(Addon, {"name": name}, description=description, taxed=True,
                                     show_on_order=True, auto_activate="payment")
        if created:
            addon.products = [products[slug] for slug in product_slugs]
            for currency in currencies.values():
                monthly = _converted(Decimal(monthly_usd), currency.rate)
                for cycle in CYCLES:
                    addon.pricing.append(AddonPricing(currency_id=currency.id, cycle=cycle,
                                                      price=cycle_price(monthly, cycle)))
        addons[name] = addon
    return addons


def _seed_domains_catalog(currencies) -> dict[str, Tld]:
    _get_or_add(Registrar, {"module": REGISTRAR_MODULE}, display_name="Local (demo, no registrar)",
                enabled=True, test_mode=True)
    tlds = {}
    for order, (extension, register, transfer, renew, label) in enumerate(TLDS):
        tld, created = _get_or_add(
            Tld, {"extension": extension}, registrar_module=REGISTRAR_MODULE, epp_required=True,
            dns_management=True, email_forwarding=True, id_protection=extension != ".eu",
            grace_period_days=30, grace_fee=Decimal("0.00"), redemption_period_days=30,
            redemption_fee=Decimal("80.00"), label=label, sort_order=order)
        if created:
            for currency in currencies.values():
                tld.pricing.append(TldPricing(
                    currency_id=currency.id, years=1,
                    register_price=_converted(Decimal(register), currency.rate),
                    transfer_price=_converted(Decimal(transfer), currency.rate),
                    renew_price=_converted(Decimal(renew), currency.rate)))
        tlds[extension] = tld
    for addon, yearly_usd in DOMAIN_ADDON_PRICES.items():
        for currency in currencies.values():
            _get_or_add(DomainAddonPricing, {"currency_id": currency.id, "addon": addon.value},
                        price=_converted(Decimal(yearly_usd), currency.rate))
    return tlds


def _seed_promotions(today: date, products: dict[str, Product]) -> None:
    """Promotion codes the store accepts: one for new clients, renewing; one for free
    set-up on yearly plans, limited in uses."""
    _get_or_add(Promotion, {"code": "WELCOME10"}, type=PromotionType.PERCENTAGE.value,
                value=Decimal("10.00"), recurring=True, recur_for=0, new_clients_only=True,
                start_date=today - timedelta(days=30), expiration_date=today + timedelta(days=90),
                notes="10% off for new clients, on every renewal.")
    free_setup, created = _get_or_add(
        Promotion, {"code": "FREESETUP"}, type=PromotionType.FREE_SETUP.value, value=Decimal("0.00"),
        cycles="Annually,Biennially,Triennially", max_uses=100, uses=0, once_per_client=True,
        notes="No set-up fee on yearly plans; once per client, 100 uses.")
    if created:
        free_setup.products = list(products.values())


def _seed_taxes() -> list[TaxRule]:
    for level, name, country, state, rate in TAX_RULES:
        _get_or_add(TaxRule, {"level": level, "name": name, "country": country, "state": state},
                    rate=Decimal(rate))
    db.session.flush()
    return db.session.query(TaxRule).order_by(TaxRule.id).all()


def _seed_gateways() -> None:
    for order, (module, display_name, enabled, instructions) in enumerate(GATEWAYS):
        _get_or_add(PaymentGateway, {"module": module}, display_name=display_name, enabled=enabled,
                    test_mode=module != "banktransfer", instructions=instructions, sort_order=order)


def _seed_settings() -> None:
    existing = set(db.session.scalars(select(Setting.key)))
    for key, value in SETTINGS.items():
        if key not in existing:
            db.session.add(Setting(key=key, value=value))


def _text_to_html(text: str) -> str:
    paragraphs = text.split("\n\n")
    return "".join(f"<p>{paragraph.replace(chr(10), '<br>')}</p>" for paragraph in paragraphs)


def _seed_email_templates() -> None:
    existing = {tuple(row) for row in db.session.execute(select(EmailTemplate.name, EmailTemplate.language))}
    for name, kind, subject, text in EMAIL_TEMPLATES:
        if (name, "en") not in existing:
            body = f"{text}\n\n{{{{ company_name }}}}"
            db.session.add(EmailTemplate(name=name, type=kind, language="en", subject=subject,
                                         body_text=body, body_html=_text_to_html(body)))


def _seed_departments() -> dict[str, SupportDepartment]:
    departments = {}
    for order, (name, email, description, clients_only) in enumerate((
        ("Sales", "sales@example.com", "Questions before you buy", False),
        ("Technical Support", "support@example.com", "Help with websites, email, servers and domains", False),
        ("Billing", "billing@example.com", "Invoices, payments and your account", True),
    )):
        department = db.session.query(SupportDepartment).filter(
            (SupportDepartment.name == name) | (SupportDepartment.email == email)).first()
        if department is None:
            department = SupportDepartment(name=name, email=email, description=description,
                                           clients_only=clients_only, sort_order=order)
            db.session.add(department)
        departments[name] = department
    return departments


def _seed_knowledge_base(today: date) -> None:
    categories = {}
    for order, (name, description) in enumerate(KB_CATEGORIES):
        categories[name], _ = _get_or_add(KbCategory, {"name": name, "parent_id": None},
                                          description=description, sort_order=order)
    db.session.flush()
    existing = set(db.session.scalars(select(KbArticle.slug)))
    views = random.Random(SEED + 11)
    for number, (category, title, slug, tags, body) in enumerate(KB_ARTICLES):
        if slug in existing:
            continue
        useful = views.randint(5, 60)
        written = datetime.combine(today - timedelta(days=300 - number * 20), time(10, 0))
        db.session.add(KbArticle(category_id=categories[category].id, title=title, slug=slug,
                                 body=body, tags=tags, views=views.randint(80, 2500),
                                 votes_useful=useful, votes_total=useful + views.randint(0, 8),
                                 created_at=written, updated_at=written))
    existing_titles = set(db.session.scalars(select(Announcement.title)))
    for title, body, days_ago in ANNOUNCEMENTS:
        if title not in existing_titles:
            published = datetime.combine(today - timedelta(days=days_ago), time(9, 30))
            db.session.add(Announcement(title=title, body=body, published_at=published,
                                        created_at=published, updated_at=published))


# --- users --------------------------------------------------------------------------


def _seed_users():
    """Staff logins and the portal's demo login (FAB commits each user itself)."""
    sm = current_app.appbuilder.sm
    for role in ("Admin", "Finance", "Support", "Manager", "Client"):
        if sm.find_role(role) is None:
            sm.add_role(role)
    users, skipped = {}, []
    for username, password, role, first_name, last_name in STAFF_USERS:
        user = sm.find_user(username=username)
        if user is None:
            try:
                user = create_staff_user(username, f"{username}@example.com", password, role,
                                         first_name, last_name)
            except ValueError as error:
                skipped.append(f"{username} ({error})")
                continue
        else:
            skipped.append(f"{username} (exists)")
        users[username] = user
    demo_user = sm.find_user(username=DEMO_CLIENT_EMAIL)
    if demo_user is None and sm.find_user(email=DEMO_CLIENT_EMAIL) is None:
        demo_user = sm.add_user(DEMO_CLIENT_EMAIL, "Alex", "Morgan", DEMO_CLIENT_EMAIL,
                                sm.find_role("Client"), password=DEMO_CLIENT_PASSWORD) or None
    if demo_user is None:
        skipped.append(f"{DEMO_CLIENT_EMAIL} (another user has that email)")
    users["demo"] = demo_user
    return users, skipped


def _business_exists() -> bool:
    return db.session.query(Client.id).filter_by(email=DEMO_CLIENT_EMAIL).first() is not None


# --- the business -------------------------------------------------------------------


@dataclass
class _ClientPlan:
    client: Client
    currency: Currency
    primary_domain: str
    tax_levels: tuple[TaxRate | None, TaxRate | None] = (None, None)
    gateway: str = "banktransfer"
    services: list["_ServicePlan"] = field(default_factory=list)
    domains: list["_DomainPlan"] = field(default_factory=list)


@dataclass
class _ServicePlan:
    owner: _ClientPlan
    spec: ProductSpec
    cycle: str
    scenario: str
    paid_periods: int
    domain_name: str
    addon_names: list[str]
    option_choices: dict[str, int]  # option name -> index of the chosen value
    option_labels: list[str] = field(default_factory=list)
    service: Service | None = None
    addons: list[ServiceAddon] = field(default_factory=list)
    order: Order | None = None
    first_due: date | None = None  # registration date: the first period's start
    due: date | None = None         # next due date
    anchor_day: int = 1


@dataclass
class _DomainPlan:
    owner: _ClientPlan
    name: str
    scenario: str
    years: int
    renewals: int
    transfer: bool
    domain: Domain | None = None
    order: Order | None = None
    first_due: date | None = None
    due: date | None = None


@dataclass
class _Line:
    type: str
    rel_id: int | None
    description: str
    amount: Decimal
    taxed: bool
    period_start: date | None = None
    period_end: date | None = None


@dataclass
class _Bill:
    owner: _ClientPlan
    issued: date
    due: date
    status: str
    lines: list[_Line]
    paid_at: datetime | None = None
    order: Order | None = None
    overpaid: Decimal = Decimal("0.00")
    add_funds: bool = False
    invoice: Invoice | None = None


class _BusinessBuilder:
    """Builds the clients and all they own, in dependency order, in one transaction."""

    def __init__(self, reference: _Reference, users: dict, today: date):
        self.ref = reference
        self.users = users
        self.today = today
        self.now = utcnow()
        # Separate streams: people and plans never depend on the date, timing may.
        self.people = random.Random(SEED)
        self.plans = random.Random(SEED + 1)
        self.timing = random.Random(SEED + 2)
        self.clients: list[_ClientPlan] = []
        self.bills: list[_Bill] = []
        self.used_order_numbers = set(db.session.scalars(select(Order.order_number)))
        self.used_domains = set(db.session.scalars(select(Domain.name)))
        self.used_ticket_ids = set(db.session.scalars(select(Ticket.tid)))
        self.used_gateway_ids = {(gateway, reference) for gateway, reference in db.session.execute(
            select(Transaction.gateway, Transaction.gateway_transaction_id))}
        self.reminders: list[tuple[Invoice, str, datetime]] = []
        self.system = Actor.system()

    # helpers

    def at(self, day: date, hour: int | None = None) -> datetime:
        """A moment on day, during office hours, never in the future."""
        hour = self.timing.randint(8, 20) if hour is None else hour
        moment = datetime.combine(day, time(hour, self.timing.randint(0, 59)))
        return min(moment, self.now - timedelta(minutes=5))

    def staff_id(self, *usernames: str) -> int | None:
        for name in usernames:
            user = self.users.get(name)
            if user is not None:
                return user.id
        return None

    def order_number(self) -> str:
        while True:
            number = str(self.plans.randint(1_000_000_000, 9_999_999_999))
            if number not in self.used_order_numbers:
                self.used_order_numbers.add(number)
                return number

    def price(self, spec: ProductSpec, plan: _ClientPlan, cycle: str) -> tuple[Decimal, Decimal]:
        code = plan.currency.code
        setup = spec.setup[code] if spec.setup and cycle in SETUP_FEE_CYCLES else Decimal("0.00")
        return cycle_price(spec.monthly[code], cycle), setup

    def discounted(self, plan: _ClientPlan, amount: Decimal) -> Decimal:
        group = plan.client.group
        if group is None or not group.discount_percent:
            return amount
        return to_money(amount * (100 - group.discount_percent) / 100)

    # the whole build

    def build(self) -> None:
        self.make_clients()
        self.plan_services()
        self.plan_domains()
        self.assign_groups()
        self.make_services()
        self.make_domains()
        self.date_clients()
        db.session.flush()
        self.make_order_items()
        self.bill_services()
        self.bill_domains()
        self.bill_add_funds()
        self.make_invoices()
        db.session.flush()
        self.record_sent_reminders()
        self.make_payments_and_credit()
        self.make_quotes_and_billables()
        self.make_tickets()
        self.link_demo_login()
        db.session.flush()
        self.make_activity_log()
        self.make_automation_runs()

    # clients

    def make_clients(self) -> None:
        rng = self.people
        usd = self.ref.currencies["USD"]
        demo = Client(first_name="Alex", last_name="Morgan", company_name="Morgan Web Studio",
                      email=DEMO_CLIENT_EMAIL, phone="+1 512 555 0100",
                      address1="401 Congress Avenue", city="Austin", state="TX", postcode="78701",
                      country="US", currency=usd, email_verified=True, marketing_opt_in=True,
                      signup_ip="198.51.100.10", default_gateway="stripe")
        self.add_client(demo, self.unique_domain("morganwebstudio", ".com"), "stripe")
        countries = [country for country, count in CLIENTS_PER_COUNTRY for _ in range(count)]
        rng.shuffle(countries)
        used_emails = set(db.session.scalars(select(Client.email)))
        for country in countries:
            while True:
                first, last = rng.choice(FIRST_NAMES[country]), rng.choice(LAST_NAMES[country])
                email = f"{_ascii(first)}.{_ascii(last)}@{rng.choice(EMAIL_DOMAINS)}"
                if email not in used_emails:
                    used_emails.add(email)
                    break
            city, state, postcode = rng.choice(CITIES[country])
            street, number = rng.choice(STREETS[country]), rng.randint(2, 240)
            address = f"{street} {number}" if country in HOUSE_NUMBER_AFTER_STREET else f"{number} {street}"
            company = brand = None
            if rng.random() < 0.6:
                brand = f"{rng.choice(COMPANY_FIRST)} {rng.choice(COMPANY_SECOND)}"
                company = f"{brand} {COMPANY_SUFFIX[country]}"
            currency = self.ref.currencies[CURRENCY_OF_COUNTRY.get(country, "USD")]
            gateway = rng.choice(PAYMENT_GATEWAYS)
            client = Client(
                first_name=first, last_name=last, company_name=company, email=email,
                phone=_phone(country, rng), address1=address, city=city, state=state,
                postcode=postcode, country=country, currency=currency,
                email_verified=rng.random() < 0.85, marketing_opt_in=rng.random() < 0.4,
                signup_ip=f"198.51.100.{rng.randint(11, 250)}", default_gateway=gateway,
                language={"DE": "de", "FR": "fr", "NL": "nl"}.get(country, "en"),
                tax_exempt=company is not None and rng.random() < 0.05)
            base = _ascii(brand or f"{first}{last}").replace(".", "")
            european = country in ("DE", "FR", "NL")
            extension = rng.choice((".eu", ".com") if european else (".com", ".com", ".net", ".io"))
            self.add_client(client, self.unique_domain(base, extension), gateway)
            if rng.random() < 0.3:
                self.add_contact(client, country, rng)

    def add_client(self, client: Client, primary_domain: str, gateway: str) -> None:
        db.session.add(client)
        plan = _ClientPlan(client, client.currency, primary_domain, gateway=gateway)
        plan.tax_levels = find_tax_rates(self.ref.tax_rules, client.country, client.state)
        self.clients.append(plan)

    def add_contact(self, client: Client, country: str, rng: random.Random) -> None:
        first, last = rng.choice(FIRST_NAMES[country]), client.last_name
        client.contacts.append(Contact(
            first_name=first, last_name=last, company_name=client.company_name,
            email=f"{_ascii(first)}.{_ascii(last)}.billing@{rng.choice(EMAIL_DOMAINS)}",
            phone=client.phone, country=country, receives_invoices=True,
            receives_general=rng.random() < 0.5, receives_support=rng.random() < 0.5))

    def unique_domain(self, base: str, extension: str) -> str:
        base = "".join(ch for ch in base.lower().replace(" ", "") if ch.isalnum() or ch == "-") or "site"
        name, n = f"{base}{extension}", 1
        while name in self.used_domains:
            n += 1
            name = f"{base}{n}{extension}"
        self.used_domains.add(name)
        return name

    # plans

    def plan_services(self) -> None:
        rng = self.plans
        counts = [3] + [rng.choice((1, 1, 2, 2, 2, 3)) for _ in self.clients[1:]]
        demo_scenarios = ["paid", "due_soon", "overdue"]
        pool = [scenario for scenario, count in SERVICE_SCENARIOS.items() for _ in range(count)]
        for scenario in demo_scenarios[1:]:
            pool.remove(scenario)
        pool += ["paid"] * (sum(counts) - len(demo_scenarios) - len(pool))
        rng.shuffle(pool)
        scenarios = demo_scenarios + pool
        demo_products = ["pro", "vps-4gb", "starter"]
        weights = [spec.weight for spec in PRODUCTS]
        position = 0
        for plan, count in zip(self.clients, counts):
            for index in range(count):
                scenario = scenarios[position]
                if plan is self.clients[0]:
                    spec = PRODUCT_BY_SLUG[demo_products[index]]
                else:
                    spec = rng.choices(PRODUCTS, weights)[0]
                kind = "shared" if spec.type == "hosting" else "other"
                cycle = rng.choices(CYCLES, CYCLE_WEIGHTS[kind])[0]
                if plan is self.clients[0]:
                    cycle = ("Annually", "Monthly", "Monthly")[index]
                months = months_in_cycle(cycle)
                paid = rng.randint(1, MAX_PAID_PERIODS[months])
                if spec.type == "server":
                    domain_name = f"vps{position + 1}.{plan.primary_domain}"
                elif index == 0:
                    domain_name = plan.primary_domain
                else:
                    domain_name = self.unique_domain(
                        rng.choice(("shop", "blog", "app", "store", "events")) + plan.primary_domain.split(".")[0],
                        rng.choice((".com", ".net", ".org")))
                addons = [name for name, _, slugs, _ in ADDONS
                          if spec.slug in slugs and rng.random() < 0.22]
                if plan is self.clients[0] and index == 1:
                    addons = ["Daily Backups"]
                options = {}
                if spec.type == "server":
                    options = {name: rng.randrange(len(values)) for name, values in VPS_OPTIONS}
                plan.services.append(_ServicePlan(plan, spec, cycle, scenario, paid, domain_name,
                                                  addons, options))
                position += 1

    def plan_domains(self) -> None:
        rng = self.plans
        counts = [2] + [rng.choice((0, 1, 1, 1, 2, 2, 3)) for _ in self.clients[1:]]
        pool = [scenario for scenario, count in DOMAIN_SCENARIOS.items() for _ in range(count)]
        pool.remove("grace")
        total = sum(counts)
        pool += ["active"] * (total - 2 - len(pool))
        rng.shuffle(pool)
        scenarios = ["active", "grace"] + pool
        position = 0
        for plan, count in zip(self.clients, counts):
            for index in range(count):
                scenario = scenarios[position]
                position += 1
                if index == 0:
                    name = plan.primary_domain
                else:
                    extension = rng.choice([tld for tld, *_ in TLDS])
                    name = self.unique_domain(plan.primary_domain.split(".")[0], extension)
                years = 2 if scenario == "active" and rng.random() < 0.15 else 1
                renewals = rng.randint(0, 3 if years == 1 else 1)
                transfer = scenario == "pending_transfer" or rng.random() < 0.15
                plan.domains.append(_DomainPlan(plan, name, scenario, years, renewals, transfer))

    def assign_groups(self) -> None:
        vip = self.ref.client_groups["VIP"]
        resellers = self.ref.client_groups["Resellers"]
        for index, plan in enumerate(self.clients):
            if any(service.spec.type == "reseller" for service in plan.services):
                plan.client.group = resellers
            elif index % 9 == 4:
                plan.client.group = vip

    # services and domains

    def service_dates(self, plan: _ServicePlan) -> None:
        """Next due date and registration date from the plan's scenario, relative to today."""
        rng, today = self.plans, self.today
        months = months_in_cycle(plan.cycle)
        offsets = {
            "paid": (15, max(16, 30 * months)), "due_soon": (1, 14), "overdue": (-4, -1),
            "suspended": (-25, -6), "terminated": (-150, -35), "cancel_request": (-200, -3),
            "order_cancelled": (-300, -20), "pending": (-5, 0), "fraud": (-40, -8),
        }
        low, high = offsets[plan.scenario]
        due = today + timedelta(days=rng.randint(low, high))
        if plan.scenario in ("order_cancelled", "pending", "fraud"):
            plan.paid_periods = 0
        if plan.scenario == "paid":
            # The last paid period must have started by today.
            while add_months(due, -months) > today:
                due -= timedelta(days=1)
        plan.anchor_day = due.day
        plan.due = due
        plan.first_due = add_months(due, -months * plan.paid_periods, plan.anchor_day)

    def make_services(self) -> None:
        rng = self.plans
        for owner in self.clients:
            for plan in owner.services:
                self.service_dates(plan)
                status = SERVICE_STATUS_OF[plan.scenario]
                currency_id = owner.currency.id
                price, setup = self.price(plan.spec, owner, plan.cycle)
                option_rows, option_names = [], []
                for option_name, choice in plan.option_choices.items():
                    option, values = self.ref.options[option_name]
                    value = values[choice]
                    monthly = _converted(self.ref.option_monthly[value.id], owner.currency.rate)
                    price += cycle_price(monthly, plan.cycle)
                    option_rows.append(ServiceConfigOption(option_id=option.id, value_id=value.id))
                    option_names.append(f"{option_name}: {value.name}")
                recurring = self.discounted(owner, price)
                order = Order(order_number=self.order_number(), client=owner.client,
                              status=ORDER_STATUS_OF.get(plan.scenario, "Active"),
                              currency_id=currency_id, payment_method=owner.gateway,
                              ip_address=owner.client.signup_ip,
                              created_at=self.at(plan.first_due, 10))
                if order.status == "Active":
                    order.accepted_at = order.created_at + timedelta(minutes=rng.randint(5, 240))
                if plan.scenario == "fraud":
                    order.fraud_score = 92
                    order.fraud_output = "High risk: billing country and IP country differ; proxy detected"
                generated = plan.scenario in ("due_soon", "overdue", "suspended", "terminated")
                months = months_in_cycle(plan.cycle)
                next_invoice = plan.due
                if generated:
                    next_invoice = add_months(plan.due, months, plan.anchor_day)
                elif plan.scenario in ("pending", "fraud", "order_cancelled"):
                    next_invoice = add_months(plan.first_due, months, plan.anchor_day)
                server = self.ref.servers.get(plan.spec.module)
                service = Service(
                    client=owner.client, order=order, product=self.ref.products[plan.spec.slug],
                    server=server, status=status, domain=plan.domain_name,
                    username=_username(plan.domain_name, rng), password=_password(rng),
                    dedicated_ip=f"203.0.113.{rng.randint(100, 250)}" if plan.spec.type == "server" else None,
                    billing_cycle=plan.cycle, first_payment_amount=recurring + setup,
                    recurring_amount=recurring, payment_method=owner.gateway,
                    registration_date=plan.first_due, next_due_date=plan.due,
                    next_invoice_date=next_invoice, created_at=order.created_at,
                    updated_at=order.created_at)
                service.config_options = option_rows
                if plan.scenario == "suspended":
                    service.suspension_reason = SUSPENSION_REASON
                elif plan.scenario == "terminated":
                    service.termination_date = plan.due + timedelta(days=30)
                elif plan.scenario == "cancel_request":
                    service.termination_date = plan.due
                    service.cancellation_requests.append(CancellationRequest(
                        type="End of Billing Period", reason="Moving the website to a managed platform.",
                        processed_at=self.at(plan.due, 6), created_at=self.at(plan.due - timedelta(days=12))))
                elif plan.scenario == "order_cancelled":
                    service.termination_date = plan.first_due + timedelta(days=2)
                plan.option_labels = option_names
                addon_status = status if status != "Fraud" else "Cancelled"
                for name in plan.addon_names:
                    addon = self.ref.addons[name]
                    monthly = next(Decimal(usd) for n, usd, _, _ in ADDONS if n == name)
                    amount = cycle_price(_converted(monthly, owner.currency.rate), plan.cycle)
                    row = ServiceAddon(service=service, client=owner.client, addon=addon, name=name,
                                       status=addon_status, billing_cycle=plan.cycle,
                                       recurring_amount=self.discounted(owner, amount),
                                       registration_date=plan.first_due, next_due_date=plan.due,
                                       next_invoice_date=next_invoice,
                                       termination_date=service.termination_date)
                    if name == "Dedicated IP":
                        service.dedicated_ip = f"198.51.100.{rng.randint(100, 250)}"
                    plan.addons.append(row)
                plan.service, plan.order = service, order
                db.session.add_all([order, service])
        # One client has asked to cancel an active service at the end of its period.
        active = [plan for owner in self.clients[1:] for plan in owner.services if plan.scenario == "paid"]
        if active:
            waiting = active[len(active) // 2]
            waiting.service.cancellation_requests.append(CancellationRequest(
                type="End of Billing Period", reason="Closing the business at the end of the year.",
                created_at=self.at(self.today - timedelta(days=2))))

    def domain_dates(self, plan: _DomainPlan) -> None:
        rng, today = self.plans, self.today
        offsets = {
            "active": (CREATE_DOMAIN_INVOICE_DAYS_BEFORE + 1, 330 * plan.years), "due_soon": (1, 30), "grace": (-25, -1),
            "redemption": (-55, -32), "expired": (-300, -70), "cancelled": (-200, -5),
            "pending": (-4, 0), "pending_transfer": (-6, -1),
        }
        low, high = offsets[plan.scenario]
        day = today + timedelta(days=rng.randint(low, high))
        if plan.scenario in ("pending", "pending_transfer"):
            plan.renewals = 0
            plan.first_due = day
            plan.due = day
            return
        periods = plan.renewals + 1
        plan.due = day  # the expiry date, which is also the next due date
        plan.first_due = add_months(day, -12 * plan.years * periods)

    def make_domains(self) -> None:
        rng = self.plans
        for owner in self.clients:
            for plan in owner.domains:
                self.domain_dates(plan)
                status = DOMAIN_STATUS_OF[plan.scenario]
                prices = self.tld_prices(plan.name, owner.currency)
                first_price = prices.transfer_price if plan.transfer else prices.register_price
                order = Order(order_number=self.order_number(), client=owner.client,
                              status="Pending" if plan.scenario == "pending" else "Active",
                              currency_id=owner.currency.id, payment_method=owner.gateway,
                              ip_address=owner.client.signup_ip, created_at=self.at(plan.first_due, 11))
                if order.status == "Active":
                    order.accepted_at = order.created_at + timedelta(minutes=rng.randint(1, 30))
                external_dns = rng.random() < 0.15
                domain = Domain(
                    client=owner.client, order=order, name=plan.name,
                    type="Transfer" if plan.transfer else "Register", status=status,
                    registrar=REGISTRAR_MODULE, registration_date=plan.first_due,
                    registration_period=plan.years,
                    first_payment_amount=first_price * plan.years,
                    recurring_amount=prices.renew_price * plan.years,
                    payment_method=owner.gateway,
                    nameservers="\n".join(("ns1.example.org", "ns2.example.org") if external_dns else NAMESERVERS),
                    id_protection=rng.random() < 0.3, dns_management=not external_dns,
                    created_at=order.created_at, updated_at=order.created_at)
                years_months = 12 * plan.years
                if plan.scenario == "pending":
                    domain.next_due_date = plan.first_due
                    domain.next_invoice_date = add_months(plan.first_due, years_months)
                elif plan.scenario == "pending_transfer":
                    # The expiry at the losing registrar, as looked up when the order came in.
                    domain.expiry_date = self.today + timedelta(days=rng.randint(30, 300))
                    domain.next_due_date = add_months(plan.first_due, 12)
                    domain.next_invoice_date = domain.next_due_date
                else:
                    domain.expiry_date = plan.due
                    domain.next_due_date = plan.due
                    billed_ahead = plan.scenario in ("due_soon", "grace", "redemption", "expired")
                    domain.next_invoice_date = add_months(plan.due, years_months) if billed_ahead else plan.due
                if plan.scenario in ("expired", "cancelled"):
                    domain.auto_renew = False
                    domain.do_not_renew = plan.scenario == "cancelled"
                plan.domain, plan.order = domain, order
                db.session.add_all([order, domain])

    def tld_prices(self, name: str, currency: Currency) -> TldPricing:
        tld = self.ref.tlds["." + name.split(".", 1)[1]]
        return next(p for p in tld.pricing if p.currency_id == currency.id and p.years == 1)

    def make_order_items(self) -> None:
        items = []
        for owner in self.clients:
            for plan in owner.services:
                _, setup = self.price(plan.spec, owner, plan.cycle)
                group = self.ref.group_names[plan.spec.slug]
                items.append(OrderItem(
                    order_id=plan.order.id, kind="product",
                    description=f"{group} - {plan.spec.name} ({plan.domain_name})",
                    service_id=plan.service.id, billing_cycle=plan.cycle,
                    amount=plan.service.recurring_amount, setup_fee=setup))
                for addon in plan.addons:
                    items.append(OrderItem(
                        order_id=plan.order.id, kind="addon", description=f"{addon.name} ({plan.domain_name})",
                        service_id=plan.service.id, service_addon_id=addon.id,
                        billing_cycle=plan.cycle, amount=addon.recurring_amount))
            for plan in owner.domains:
                kind = "Transfer" if plan.transfer else "Registration"
                items.append(OrderItem(
                    order_id=plan.order.id, kind="domain",
                    description=f"Domain {kind} - {plan.name} - {plan.years} year(s)",
                    domain_id=plan.domain.id, amount=plan.domain.first_payment_amount))
        db.session.add_all(items)

    # invoices

    def paid_moment(self, issued: date, due: date) -> datetime:
        """When a renewal was paid: mostly before the due date, sometimes a few days late."""
        rng = self.timing
        if rng.random() < 0.12:
            day = due + timedelta(days=rng.randint(1, 4))
        else:
            day = due - timedelta(days=rng.randint(0, 12))
        day = min(max(day, issued), self.today)
        return self.at(day)

    def service_lines(self, plan: _ServicePlan, start: date, first: bool) -> list[_Line]:
        months = months_in_cycle(plan.cycle)
        end = add_months(start, months, plan.anchor_day) - timedelta(days=1)
        period = f"({start:%Y-%m-%d} - {end:%Y-%m-%d})"
        service, taxed = plan.service, True
        group = self.ref.group_names[plan.spec.slug]
        description = f"{group} - {plan.spec.name} - {plan.domain_name} {period}"
        if plan.option_labels:
            description += "\n" + "\n".join(plan.option_labels)
        lines = [_Line(ItemType.HOSTING.value, service.id, description, service.recurring_amount,
                       taxed, start, end)]
        _, setup = self.price(plan.spec, plan.owner, plan.cycle)
        if first and setup:
            lines.append(_Line(ItemType.SETUP.value, service.id, f"Setup fee - {plan.spec.name}",
                               self.discounted(plan.owner, setup), taxed, start, end))
        for addon in plan.addons:
            lines.append(_Line(ItemType.ADDON.value, addon.id, f"{addon.name} - {plan.domain_name} {period}",
                               addon.recurring_amount, taxed, start, end))
        return lines

    def bill_services(self) -> None:
        for owner in self.clients:
            for plan in owner.services:
                months = months_in_cycle(plan.cycle)
                starts = [add_months(plan.first_due, months * i, plan.anchor_day)
                          for i in range(plan.paid_periods)]
                for index, start in enumerate(starts):
                    first = index == 0
                    issued = start if first else start - timedelta(days=CREATE_INVOICE_DAYS_BEFORE)
                    paid_at = self.at(start) if first else self.paid_moment(issued, start)
                    self.bills.append(_Bill(owner, issued, start, InvoiceStatus.PAID.value,
                                            self.service_lines(plan, start, first), paid_at,
                                            plan.order if first else None))
                scenario = plan.scenario
                if scenario in ("pending", "fraud", "order_cancelled"):
                    status = InvoiceStatus.UNPAID.value if scenario == "pending" else InvoiceStatus.CANCELLED.value
                    self.bills.append(_Bill(owner, plan.first_due, plan.first_due, status,
                                            self.service_lines(plan, plan.first_due, True), order=plan.order))
                elif scenario in ("due_soon", "overdue", "suspended", "terminated"):
                    status = InvoiceStatus.UNPAID.value
                    if scenario == "terminated" and self.plans.random() < 0.5:
                        status = InvoiceStatus.CANCELLED.value
                    issued = plan.due - timedelta(days=CREATE_INVOICE_DAYS_BEFORE)
                    self.bills.append(_Bill(owner, issued, plan.due, status,
                                            self.service_lines(plan, plan.due, False)))

    def domain_line(self, plan: _DomainPlan, start: date, first: bool) -> _Line:
        end = add_months(start, 12 * plan.years) - timedelta(days=1)
        domain = plan.domain
        if first and plan.transfer:
            kind, label, amount = ItemType.DOMAIN_TRANSFER.value, "Domain Transfer", domain.first_payment_amount
        elif first:
            kind, label, amount = ItemType.DOMAIN_REGISTER.value, "Domain Registration", domain.first_payment_amount
        else:
            kind, label, amount = ItemType.DOMAIN_RENEW.value, "Domain Renewal", domain.recurring_amount
        description = f"{label} - {plan.name} - {plan.years} Year(s) ({start:%Y-%m-%d} - {end:%Y-%m-%d})"
        return _Line(kind, domain.id, description, amount, True, start, end)

    def bill_domains(self) -> None:
        for owner in self.clients:
            for plan in owner.domains:
                scenario = plan.scenario
                if scenario in ("pending", "pending_transfer"):
                    status = InvoiceStatus.UNPAID.value if scenario == "pending" else InvoiceStatus.PAID.value
                    paid_at = self.at(plan.first_due) if status == InvoiceStatus.PAID.value else None
                    self.bills.append(_Bill(owner, plan.first_due, plan.first_due, status,
                                            [self.domain_line(plan, plan.first_due, True)], paid_at,
                                            plan.order))
                    continue
                for index in range(plan.renewals + 1):
                    start = add_months(plan.first_due, 12 * plan.years * index)
                    first = index == 0
                    issued = start if first else start - timedelta(days=CREATE_DOMAIN_INVOICE_DAYS_BEFORE)
                    paid_at = self.at(start) if first else self.paid_moment(issued, start)
                    self.bills.append(_Bill(owner, issued, start, InvoiceStatus.PAID.value,
                                            [self.domain_line(plan, start, first)], paid_at,
                                            plan.order if first else None))
                if scenario in ("due_soon", "grace", "redemption", "expired"):
                    status = InvoiceStatus.CANCELLED.value if scenario == "expired" else InvoiceStatus.UNPAID.value
                    issued = plan.due - timedelta(days=CREATE_DOMAIN_INVOICE_DAYS_BEFORE)
                    self.bills.append(_Bill(owner, issued, plan.due, status,
                                            [self.domain_line(plan, plan.due, False)]))

    def bill_add_funds(self) -> None:
        """A few clients keep credit on account, paid in through an Add Funds invoice."""
        for index, amount in ((3, "100.00"), (11, "50.00"), (27, "25.00")):
            owner = self.clients[index]
            day = self.today - timedelta(days=20 + index)
            self.bills.append(_Bill(owner, day, day, InvoiceStatus.PAID.value,
                                    [_Line(ItemType.ADD_FUNDS.value, None, "Add Funds", Decimal(amount), False)],
                                    self.at(day), add_funds=True))
        # One paid invoice was overpaid; the difference became credit.
        overpaid = next(bill for bill in self.bills if bill.owner in self.clients[7:]
                        and bill.status == InvoiceStatus.PAID.value and not bill.add_funds)
        overpaid.overpaid = Decimal("12.34")

    def make_invoices(self) -> None:
        """Invoices in date order, numbered from the invoice counter without gaps."""
        counter_name = counter_key(SETTINGS["InvoiceNumberReset"], self.today)
        counter = db.session.query(InvoiceCounter).filter_by(name=counter_name).first()
        if counter is None:
            counter = InvoiceCounter(name=counter_name, next_value=1)
            db.session.add(counter)
        ordered = sorted(enumerate(self.bills), key=lambda pair: (pair[1].issued, pair[0]))
        number = counter.next_value
        for _, bill in ordered:
            owner = bill.owner
            level1, level2 = owner.tax_levels
            exempt = owner.client.tax_exempt
            taxes = compute_invoice_taxes([(line.amount, line.taxed) for line in bill.lines],
                                          level1, level2, inclusive=False, compound=False, exempt=exempt)
            created = datetime.combine(bill.issued, time(0, 5))
            invoice = Invoice(
                number=format_invoice_number(INVOICE_NUMBER_FORMAT, number, bill.issued),
                client_id=owner.client.id, status=bill.status, currency_id=owner.currency.id,
                date=bill.issued, due_date=bill.due, subtotal=taxes.subtotal,
                tax1_name=level1.name if level1 and not exempt else None,
                tax1_rate=level1.rate if level1 and not exempt else Decimal("0"), tax1=taxes.tax1,
                tax2_name=level2.name if level2 and not exempt else None,
                tax2_rate=level2.rate if level2 and not exempt else Decimal("0"), tax2=taxes.tax2,
                total=taxes.total, payment_method=owner.gateway, created_at=created, updated_at=created)
            number += 1
            if bill.status == InvoiceStatus.PAID.value:
                invoice.amount_paid = taxes.total
                invoice.paid_at = bill.paid_at
            elif bill.status == InvoiceStatus.CANCELLED.value:
                # An order cancelled in its first days, or a debt written off after termination.
                waited = timedelta(days=2 if bill.order is not None else 31)
                invoice.cancelled_at = self.at(min(bill.due + waited, self.today))
            for line in bill.lines:
                invoice.items.append(InvoiceItem(
                    client_id=owner.client.id, type=line.type, rel_id=line.rel_id,
                    description=line.description, amount=line.amount, taxed=line.taxed,
                    period_start=line.period_start, period_end=line.period_end, due_date=bill.due))
            if bill.order is not None:
                bill.order.invoice = invoice
                bill.order.amount = taxes.total
            if bill.status == InvoiceStatus.UNPAID.value:
                self.add_reminders(invoice)
            bill.invoice = invoice
            db.session.add(invoice)
        counter.next_value = number  # the counter row is the one source of the next number

    def add_reminders(self, invoice: Invoice) -> None:
        """The dunning notices already sent for an unpaid invoice, so none goes out twice."""
        notices = (("unpaid", -int(SETTINGS["SendInvoiceReminderDays"])),
                   ("first", int(SETTINGS["SendFirstOverdueInvoiceReminder"])),
                   ("second", int(SETTINGS["SendSecondOverdueInvoiceReminder"])),
                   ("third", int(SETTINGS["SendThirdOverdueInvoiceReminder"])))
        for kind, offset in notices:
            day = invoice.due_date + timedelta(days=offset)
            if invoice.date <= day <= self.today:
                self.reminders.append((invoice, kind, self.at(day, 9)))

    def record_sent_reminders(self) -> None:
        db.session.add_all([InvoiceReminder(invoice_id=invoice.id, kind=kind, sent_at=sent_at)
                            for invoice, kind, sent_at in self.reminders])

    # payments, credit, quotes

    def transaction_id(self, gateway: str, paid_at: datetime) -> str:
        rng = self.timing
        while True:
            if gateway == "stripe":
                candidate = "ch_" + "".join(rng.choices(string.ascii_letters + string.digits, k=24))
            elif gateway == "paypal":
                candidate = "".join(rng.choices(string.ascii_uppercase + string.digits, k=17))
            else:
                candidate = f"BT{paid_at:%Y%m%d}-{rng.randint(1000, 9999)}"
            if (gateway, candidate) not in self.used_gateway_ids:
                self.used_gateway_ids.add((gateway, candidate))
                return candidate

    def make_payments_and_credit(self) -> None:
        admin_id = self.staff_id("admin", "finance")
        credits: dict[int, list[tuple[datetime, str, Decimal, Invoice | None, Transaction | None]]] = {}
        for bill in self.bills:
            invoice = bill.invoice
            if invoice.status != InvoiceStatus.PAID.value:
                continue
            gateway = invoice.payment_method
            received = invoice.total + bill.overpaid
            if gateway == "stripe":
                fees = to_money(received * Decimal("0.029") + Decimal("0.30"))
            elif gateway == "paypal":
                fees = to_money(received * Decimal("0.0349") + Decimal("0.49"))
            else:
                fees = Decimal("0.00")
            payment = Transaction(
                client_id=bill.owner.client.id, invoice_id=invoice.id, currency_id=invoice.currency_id,
                date=invoice.paid_at, gateway=gateway,
                gateway_transaction_id=self.transaction_id(gateway, invoice.paid_at),
                description="Invoice Payment", amount_in=received, fees=fees,
                exchange_rate=bill.owner.currency.rate)
            db.session.add(payment)
            if bill.add_funds:
                credits.setdefault(bill.owner.client.id, []).append(
                    (invoice.paid_at, f"Add Funds Invoice {invoice.number}", invoice.total, invoice, payment))
            if bill.overpaid:
                credits.setdefault(bill.owner.client.id, []).append(
                    (invoice.paid_at, f"Overpayment of Invoice {invoice.number}", bill.overpaid, invoice, payment))
        goodwill = self.clients[5]
        credits.setdefault(goodwill.client.id, []).append(
            (self.at(self.today - timedelta(days=9)), "Goodwill credit: email outage on cp1.example.net",
             Decimal("15.00"), None, None))
        db.session.flush()
        by_id = {plan.client.id: plan.client for plan in self.clients}
        for client_id, entries in credits.items():
            balance = Decimal("0.00")
            for moment, description, amount, invoice, payment in sorted(entries, key=lambda e: e[0]):
                balance += amount
                db.session.add(CreditEntry(
                    client_id=client_id, date=moment, description=description, amount=amount,
                    balance_after=balance, invoice_id=invoice.id if invoice else None,
                    transaction_id=payment.id if payment else None,
                    created_by_id=None if invoice else admin_id))
            by_id[client_id].credit_balance = balance

    def make_quotes_and_billables(self) -> None:
        companies = [plan for plan in self.clients[1:] if plan.client.company_name]
        annual_usd = {slug: cycle_price(PRODUCT_BY_SLUG[slug].monthly["USD"], "Annually")
                      for slug in ("vps-8gb", "reseller-silver")}
        quotes = (
            (companies[0], "Migration of 12 WordPress sites to a managed VPS", "Delivered", 21,
             (("VPS 8GB - 12 months", 1, annual_usd["vps-8gb"], "0", True),
              ("WordPress site migration (per site)", 12, Decimal("25.00"), "20", True),
              ("Daily Backups - 12 months", 1, Decimal("27.00"), "0", True))),
            (companies[1], "Reseller starter bundle for a design agency", "Draft", 30,
             (("Reseller Silver - 12 months", 1, annual_usd["reseller-silver"], "0", True),
              ("Onboarding session (2 hours)", 2, Decimal("60.00"), "50", False))),
            (companies[2], "SSL certificates for 5 domains", "Lost", -10,
             (("SSL Certificate - 12 months", 5, Decimal("43.20"), "10", True),)),
        )
        for owner, subject, stage, valid_days, items in quotes:
            rate = owner.currency.rate
            rows = [QuoteItem(description=text, quantity=quantity, unit_price=_converted(unit, rate),
                              discount_percent=Decimal(discount), taxed=taxed)
                    for text, quantity, unit, discount, taxed in items]
            lines = [(to_money(row.unit_price * row.quantity * (100 - row.discount_percent) / 100), row.taxed)
                     for row in rows]
            level1, level2 = owner.tax_levels
            taxes = compute_invoice_taxes(lines, level1, level2, inclusive=False, compound=False,
                                          exempt=owner.client.tax_exempt)
            created = self.at(self.today - timedelta(days=abs(valid_days) + 10))
            db.session.add(Quote(
                subject=subject, client_id=owner.client.id, stage=stage, currency_id=owner.currency.id,
                valid_until=self.today + timedelta(days=valid_days), subtotal=taxes.subtotal,
                tax1=taxes.tax1, tax2=taxes.tax2, total=taxes.total, items=rows,
                proposal="Prices include the setup work described; hosting renews at the standard rate.",
                created_at=created, updated_at=created))
        for owner, description, hours, hourly, action, due_in, recur in (
            (self.clients[2], "Website migration from previous host", "3", "45.00", "next_cron", None, 0),
            (self.clients[9], "Malware cleanup and hardening", "2", "60.00", "due_date", 10, 0),
            (self.clients[14], "Managed WordPress updates", "1", "30.00", "recurring", 5, 1),
            (self.clients[0], "Custom DNS configuration for mail migration", "0.5", "45.00", "next_invoice", None, 0),
        ):
            amount = to_money(_converted(Decimal(hourly), owner.currency.rate) * Decimal(hours))
            db.session.add(BillableItem(
                client_id=owner.client.id, description=description, amount=amount, hours=Decimal(hours),
                invoice_action=action,
                due_date=self.today + timedelta(days=due_in) if due_in is not None else None,
                recur_every=recur, recur_unit="months" if recur else None))

    # support

    def ticket_id(self) -> str:
        rng = self.plans
        while True:
            tid = "".join(rng.choices(string.ascii_uppercase, k=3)) + "-" + "".join(rng.choices(string.digits, k=6))
            if tid not in self.used_ticket_ids:
                self.used_ticket_ids.add(tid)
                return tid

    def make_tickets(self) -> None:
        rng = self.plans
        statuses = [status for status, count in TICKET_STATUSES for _ in range(count)]
        rng.shuffle(statuses)
        priorities = ["Low", "Medium", "High"] + [rng.choice(("Low", "Medium", "Medium", "High"))
                                                 for _ in statuses[3:]]
        support_id = self.staff_id("support", "admin")
        billing_id = self.staff_id("finance", "admin")
        sales_id = self.staff_id("manager", "admin")
        demo_user = self.users.get("demo")
        for number, status in enumerate(statuses):
            owner = self.clients[0] if number < 3 else rng.choice(self.clients[1:])
            department, subject, opening, answer, follow_up, closing = TICKET_STORIES[number % len(TICKET_STORIES)]
            client = owner.client
            service = next((plan.service for plan in owner.services
                            if plan.scenario not in ("order_cancelled", "fraud")), None)
            domain = service.domain if service else owner.primary_domain
            staff_id = {"Technical Support": support_id, "Billing": billing_id}.get(department, sales_id)
            low, high = TICKET_AGE_DAYS[status]
            opened = datetime.combine(self.today - timedelta(days=rng.randint(low, high)),
                                      time(rng.randint(7, 20), rng.randint(0, 59)))
            opened = min(opened, self.now - timedelta(hours=3))
            user_id = demo_user.id if demo_user is not None and owner is self.clients[0] else None
            messages = [(None, opening)]
            if status != "Open":
                messages.append((staff_id, answer))
            if status in ("Customer-Reply", "Closed") and follow_up:
                messages.append((None, follow_up))
            if status == "Customer-Reply" and not follow_up:
                messages.append((None, "Any update on this, please?"))
            if status == "Closed" and closing:
                messages.append((staff_id, closing))
            ticket = Ticket(
                tid=self.ticket_id(), department_id=self.ref.departments[department].id, client_id=client.id,
                service_id=service.id if service and department == "Technical Support" else None,
                name=client.full_name, email=client.email, subject=subject, status=status,
                priority=priorities[number], assigned_to_id=staff_id if status != "Open" else None,
                created_at=opened, updated_at=opened)
            moment = opened
            for position, (author_id, text) in enumerate(messages):
                if position:
                    moment = min(moment + timedelta(minutes=rng.randint(20, 600)), self.now - timedelta(minutes=10))
                reply = TicketReply(message=text.format(domain=domain), created_at=moment)
                if author_id is not None:
                    staff = next((user for user in self.users.values()
                                  if user is not None and user.id == author_id), None)
                    reply.admin_id = author_id
                    reply.name = f"{staff.first_name} {staff.last_name}" if staff else "Support Team"
                    if ticket.first_response_at is None:
                        ticket.first_response_at = moment
                    if status == "Closed":
                        reply.rating = rng.choice((4, 5, 5))
                else:
                    reply.user_id = user_id
                    reply.name = client.full_name
                    reply.email = client.email
                ticket.replies.append(reply)
            ticket.last_reply_at = moment
            ticket.updated_at = moment
            if status == "Closed":
                ticket.closed_at = min(moment + timedelta(days=3), self.now - timedelta(minutes=1))
            if status in ("On Hold", "In Progress") and staff_id is not None:
                note = ("Waiting for the client's registrar to confirm the change." if status == "On Hold"
                        else "Reproduced on staging; fix scheduled for tonight's maintenance window.")
                ticket.notes.append(TicketNote(admin_id=staff_id, message=note, created_at=moment))
            db.session.add(ticket)
        for plan, text in ((self.clients[0], "Long-standing client; prefers email over phone."),
                           (self.clients[4], "Asked for a discount on the annual renewal, approved by Lena."),
                           (self.clients[8], "Bank transfers usually arrive 2-3 days after the due date.")):
            db.session.add(ClientNote(client_id=plan.client.id, author_id=self.staff_id("admin"), body=text,
                                      sticky=plan is self.clients[0]))

    # audit trail and automation history

    def link_demo_login(self) -> None:
        """The portal's demo login owns the first client."""
        demo_user = self.users.get("demo")
        if demo_user is not None:
            db.session.add(ClientUser(user_id=demo_user.id, client_id=self.clients[0].client.id,
                                      is_owner=True, permissions=",".join(CLIENT_PERMISSIONS)))

    def date_clients(self) -> None:
        """Each client signed up the day before its first order."""
        for owner in self.clients:
            first_seen = min([plan.first_due for plan in owner.services] +
                             [plan.first_due for plan in owner.domains] + [self.today])
            owner.client.created_at = owner.client.updated_at = self.at(first_seen - timedelta(days=1), 9)

    def make_activity_log(self) -> None:
        entries = []
        for owner in self.clients:
            for plan in owner.services:
                service = plan.service
                label = f"Service #{service.id} ({service.domain})"
                if plan.scenario == "suspended":
                    entries.append((self.audit("service_suspended", f"{label} suspended: {SUSPENSION_REASON}",
                                               service, "Active", "Suspended"),
                                    self.at(plan.due + timedelta(days=5), 9)))
                elif plan.scenario == "terminated":
                    entries.append((self.audit("service_terminated", f"{label} terminated after 30 days overdue",
                                               service, "Suspended", "Terminated"),
                                    self.at(service.termination_date, 9)))
                elif plan.scenario == "cancel_request":
                    entries.append((self.audit("service_cancelled",
                                               f"{label} cancelled at the end of its billing period",
                                               service, "Active", "Cancelled"),
                                    self.at(plan.due, 6)))
                elif plan.scenario == "fraud":
                    entries.append((self.audit("order_fraud", f"Order {plan.order.order_number} marked as fraud",
                                               plan.order, "Pending", "Fraud"),
                                    plan.order.created_at + timedelta(hours=1)))
            for plan in owner.domains:
                if plan.scenario in ("grace", "expired", "redemption"):
                    status = DOMAIN_STATUS_OF[plan.scenario]
                    entries.append((self.audit("domain_status_changed", f"Domain {plan.name} is now {status}",
                                               plan.domain, "Active", status),
                                    self.at(plan.due + timedelta(days=1), 3)))
        paid = [bill.invoice for bill in self.bills if bill.invoice.status == InvoiceStatus.PAID.value]
        for invoice in sorted(paid, key=lambda invoice: invoice.paid_at)[-12:]:
            entries.append((log("invoice_paid", f"Invoice {invoice.number} paid ({invoice.payment_method})",
                                invoice, before={"status": "Unpaid"},
                                after={"status": "Paid", "amount_paid": invoice.total}, actor=self.system),
                            invoice.paid_at))
        for entry, moment in entries:
            entry.created_at = moment
        log("demo_seeded", "Demo business seeded", actor=self.system)

    def audit(self, action: str, description: str, obj, before: str, after: str):
        """An activity-log entry by the automation for a status change."""
        return log(action, description, obj, before={"status": before}, after={"status": after},
                   actor=self.system)

    def make_automation_runs(self) -> None:
        """The last three daily runs, recorded as the automation records them."""
        from app.billing.automation import ALL_CLIENTS, STEPS

        rng = self.timing
        existing = {tuple(row) for row in db.session.execute(select(AutomationRun.run_date, AutomationRun.step,
                                                 AutomationRun.chunk))}
        hour = current_app.config.get("CRON_HOUR", 9)
        for days_ago in (3, 2, 1):
            run_date = self.today - timedelta(days=days_ago)
            started = datetime.combine(run_date, time(hour, 0))
            for position, step in enumerate(STEPS):
                if (run_date, step, ALL_CLIENTS) in existing:
                    continue
                began = started + timedelta(seconds=position * 7)
                db.session.add(AutomationRun(
                    run_date=run_date, step=step, chunk=ALL_CLIENTS, status="done", started_at=began,
                    finished_at=began + timedelta(seconds=rng.randint(1, 6)),
                    counts={"checked": rng.randint(40, 120), "changed": rng.randint(0, 4), "failed": 0}))


# --- small helpers ------------------------------------------------------------------


def _ascii(text: str) -> str:
    """Lower-case ASCII for email addresses and domain names (Müller -> muller, O'Brien -> obrien)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum() or ch == ".")


def _phone(country: str, rng: random.Random) -> str:
    # Numbers from ranges reserved for fiction and examples where the country has one.
    n = rng.randint(100, 199)
    return {
        "US": f"+1 {rng.choice(('206', '303', '214', '312', '617'))} 555 0{n}",
        "CA": f"+1 {rng.choice(('416', '604', '514'))} 555 0{n}",
        "GB": f"+44 20 7946 0{n}",
        "DE": f"+49 30 2309 {n}0",
        "FR": f"+33 1 99 00 {n // 10:02d} {n % 100:02d}",
        "NL": f"+31 20 794 {n}0",
        "AU": f"+61 2 5550 {n}0",
    }[country]


def _username(domain: str, rng: random.Random) -> str:
    letters = "".join(ch for ch in domain.split(".")[0] if ch.isalpha())[:6] or "user"
    return f"{letters}{rng.randint(10, 99)}"


def _password(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=16))


def _summary(skipped_users: list[str]) -> str:
    def count(model) -> int:
        return db.session.scalar(select(func.count()).select_from(model))

    today = date.today()
    statuses = Counter({status: number for status, number in db.session.execute(
        select(Invoice.status, func.count()).group_by(Invoice.status))})
    overdue = db.session.scalar(select(func.count()).select_from(Invoice).where(
        Invoice.status == InvoiceStatus.UNPAID.value, Invoice.due_date < today))
    unpaid = statuses[InvoiceStatus.UNPAID.value] - overdue
    logins = ", ".join(f"{name}/{password} ({role})" for name, password, role, _, _ in STAFF_USERS)
    text = (
        f"Seeded the demo business \"{COMPANY_NAME}\"; the database now holds "
        f"{count(Client)} clients ({count(Contact)} contacts), "
        f"{count(Service)} services, {count(Domain)} domains, {count(Order)} orders, "
        f"{count(Invoice)} invoices ({statuses[InvoiceStatus.PAID.value]} paid, {unpaid} unpaid, "
        f"{overdue} overdue, {statuses[InvoiceStatus.CANCELLED.value]} cancelled), "
        f"{count(Transaction)} transactions, {count(CreditEntry)} credit entries, {count(Quote)} quotes, "
        f"{count(Ticket)} tickets, {count(KbArticle)} knowledge-base articles, "
        f"{count(Announcement)} announcements; catalog of {count(Product)} products, {count(Addon)} addons, "
        f"{count(Tld)} TLDs in {count(Currency)} currencies. Staff logins: {logins}; "
        f"client portal login: {DEMO_CLIENT_EMAIL}/{DEMO_CLIENT_PASSWORD}."
    )
    if skipped_users:
        text += f" Logins not created: {'; '.join(skipped_users)}."
    return text
