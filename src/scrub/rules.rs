//! The built-in detectors, as data: one row per credential family.
//!
//! A row names the kind written into the marker, the literal keywords that make the prefilter
//! look (case-sensitive unless `.ci()`), and how to find the secret once a keyword hit points
//! somewhere: a regex run on a bounded window around the hit, or one of the hand-written
//! finders for shapes a regex says badly (URLs, PEM blocks, `key = value`).
//!
//! Window: the regex starts at most `before` bytes ahead of the hit and may run to `span`
//! bytes after the hit's start; the match must contain the hit. With `.near(n)` the keyword
//! is context instead (`twilio`, `discord`): the secret may lie anywhere within `n` bytes
//! around it. A regex with a group named `secret` redacts only that group.

use super::checks;

/// How a rule finds its secret around a keyword hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Find {
    Regex(&'static str),
    /// `scheme://user:password@host`: the password.
    Url,
    /// `-----BEGIN … PRIVATE KEY-----` through its END line (or the end of a truncated body).
    Pem,
    /// `key = value`, `key: value`, `"key": "value"`, `<key>value</key>` with a sensitive key.
    Assignment,
    /// An existing `[REDACTED:kind:fp]` marker, protected from every other rule.
    Marker,
}

/// Higher wins when two candidates overlap.
pub(super) const SPECIFIC: u8 = 3;
pub(super) const STRUCTURED: u8 = 2;
pub(super) const GENERIC: u8 = 1;

/// Characters that continue a token: a match next to one of these is part of something longer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Bound {
    /// ASCII letters and digits on both sides.
    Alnum,
    /// No check (custom detectors say what they mean in their regex).
    None,
    /// Digits before (a longer number), token characters after (`[A-Za-z0-9_-]`).
    Digits,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Rule {
    pub kind: &'static str,
    pub keywords: &'static [&'static str],
    pub ci: bool,
    pub find: Find,
    pub before: usize,
    pub span: usize,
    pub near: bool,
    /// A byte that must occur within so many bytes after the keyword (a cheap memchr that
    /// spares the regex a long failing scan).
    pub needs: Option<(u8, usize)>,
    pub check: Option<fn(&str) -> bool>,
    pub prio: u8,
    pub bound: Bound,
}

const fn rule(
    kind: &'static str,
    keywords: &'static [&'static str],
    find: Find,
    span: usize,
) -> Rule {
    Rule {
        kind,
        keywords,
        ci: false,
        find,
        before: 0,
        span,
        near: false,
        needs: None,
        check: None,
        prio: SPECIFIC,
        bound: Bound::Alnum,
    }
}

const fn rx(
    kind: &'static str,
    keywords: &'static [&'static str],
    pattern: &'static str,
    span: usize,
) -> Rule {
    rule(kind, keywords, Find::Regex(pattern), span)
}

impl Rule {
    const fn check(mut self, f: fn(&str) -> bool) -> Self {
        self.check = Some(f);
        self
    }
    const fn before(mut self, n: usize) -> Self {
        self.before = n;
        self
    }
    const fn near(mut self, n: usize) -> Self {
        self.near = true;
        self.before = n;
        self.ci = true;
        self
    }
    const fn needs(mut self, byte: u8, within: usize) -> Self {
        self.needs = Some((byte, within));
        self
    }
    const fn ci(mut self) -> Self {
        self.ci = true;
        self
    }
    const fn prio(mut self, p: u8) -> Self {
        self.prio = p;
        self
    }
    const fn bound(mut self, b: Bound) -> Self {
        self.bound = b;
        self
    }
    /// A password given to a command-line tool: any case of the tool's name, the regex says
    /// where the value starts and ends, and a token a specific rule knows wins.
    const fn flag(self) -> Self {
        self.ci()
            .bound(Bound::None)
            .prio(STRUCTURED)
            .check(checks::cli_password)
    }
}

/// Keywords that may start a sensitive key name; the finder expands the hit to the whole name.
const KEY_STEMS: &[&str] = &[
    "pass",
    "secret",
    "token",
    "auth",
    "credential",
    "apikey",
    "api_key",
    "api-key",
    "private",
    "accountkey",
    "accesskey",
    "access_key",
    "access-key",
    "storage",
    "appkey",
    "app_key",
    "app-key",
    "application",
    "signing",
    "encryption",
    "masterkey",
    "master_key",
    "pwd",
];

/// `SK` and a hex digit: the start of a Twilio API key SID.
const TWILIO_SK: &[&str] = &[
    "SK0", "SK1", "SK2", "SK3", "SK4", "SK5", "SK6", "SK7", "SK8", "SK9", "SKa", "SKb", "SKc",
    "SKd", "SKe", "SKf", "SKA", "SKB", "SKC", "SKD", "SKE", "SKF",
];

/// A password after a command-line flag: quoted (may hold spaces), or bare to whitespace.
macro_rules! cli_value {
    () => {
        r#"(?P<secret>'[^'\n]{1,256}'|"[^"\n]{1,256}"|[^\s'"-][^\s]{0,255})"#
    };
}

/// A tool's name, then the rest of its command line (continued lines included, at most 300
/// bytes) up to a flag: `mysql -h db -u root -pSECRET`, `curl -X POST \\\n -u u:SECRET`.
macro_rules! command {
    ($tools:literal, $flag:literal) => {
        concat!("(?i:", $tools, r")(?:[^\n]|\\\n){0,300}?[ \t]", $flag)
    };
}

/// curl's `-u user:password` / `--user=user:password` (`-U`/`--proxy-user` for its proxy),
/// with the pair bare or in single or double quotes.
macro_rules! curl_user {
    ($pair:literal) => {
        concat!(
            command!("curl", r"(?:-u|--user|-U|--proxy-user)(?:[ \t]+|=)?"),
            $pair
        )
    };
}

#[rustfmt::skip]
pub(super) const RULES: &[Rule] = &[
    rule("redacted", &["[REDACTED:"], Find::Marker, 100),
    rule("password_field", KEY_STEMS, Find::Assignment, 4096).ci().prio(GENERIC),
    rule("url_credentials", &["://", r":\/\/"], Find::Url, 512).prio(STRUCTURED),
    rule("private_key", &["PRIVATE KEY"], Find::Pem, 65536),
    rx("github_token", &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"], r"gh[pousr]_[A-Za-z0-9]{36}", 40).check(checks::crc32_token),
    rx("github_fine_grained_token", &["github_pat_"], r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}", 93),
    rx("gitlab_token", &["glpat-", "gldt-", "glrt-", "glptt-", "glft-", "glsoat-", "glcbt-", "gloas-", "glimt-", "glagent-", "glffct-"],
        r"gl(?:pat|dt|rt|ptt|ft|soat|cbt|oas|imt|agent|ffct)-[A-Za-z0-9_-]{20,}(?:\.[0-9a-z]{9})?", 330),
    rx("gitlab_token", &["GR1348941"], r"GR1348941[A-Za-z0-9_-]{20,}", 80),
    rx("aws_access_key_id", &["AKIA", "ASIA", "ABIA", "ACCA", "A3T"], r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}", 20),
    rx("google_api_key", &["AIza"], r"AIza[A-Za-z0-9_-]{35}", 39),
    rx("google_oauth_client_secret", &["GOCSPX-"], r"GOCSPX-[A-Za-z0-9_-]{28}", 35),
    rx("google_oauth_token", &["ya29."], r"ya29\.[A-Za-z0-9_-]{30,}", 2100),
    rx("slack_token", &["xox"], r"xox(?:[abposr]|e(?:\.xox[bp])?)-[0-9A-Za-z][0-9A-Za-z-]{9,}", 300).check(checks::slack),
    rx("slack_token", &["xapp-"], r"xapp-[0-9]-[A-Z0-9]+-[0-9]+-[a-z0-9]+", 200),
    rx("slack_webhook", &["hooks.slack."], r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,}", 240).before(8),
    rx("stripe_key", &["sk_live_", "sk_test_", "sk_prod_", "rk_live_", "rk_test_", "rk_prod_"], r"[sr]k_(?:live|test|prod)_[A-Za-z0-9]{20,}", 260),
    rx("webhook_secret", &["whsec_"], r"whsec_[A-Za-z0-9+/=]{24,}", 110),
    rx("openai_key", &["T3BlbkFJ"], r"sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}", 420).before(210),
    rx("anthropic_key", &["sk-ant-"], r"sk-ant-[a-z]{2,10}[0-9]{2}-[A-Za-z0-9_-]{80,}", 140).check(checks::ends_aa),
    rx("jwt", &["eyJ"], r"eyJ[A-Za-z0-9_-]{8,}\.ey[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*", 16384).needs(b'.', 2048).check(checks::jwt),
    rx("age_secret_key", &["AGE-SECRET-"], r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", 74),
    rx("azure_connection_string", &["AccountKey=", "AccessKey="],
        r"(?:AccountName|SharedAccessKeyName)=[^;\s]{1,256};\s*(?:AccountKey|SharedAccessKey)=(?P<secret>[A-Za-z0-9+/]{20,}={0,2})", 140).before(300),
    rx("azure_sas_token", &["sig="], r"sv=[0-9]{4}-[0-9]{2}-[0-9]{2}[^\s\x22'<>]{0,600}?[?&]sig=(?P<secret>[A-Za-z0-9%+/=]{20,})", 200).before(640),
    rx("azure_client_secret", &["Q~"], r"[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}", 38).before(4),
    rx("bearer_token", &["bearer"], r"(?i:bearer)[ \t]+(?P<secret>[A-Za-z0-9._~+/-]{16,}=*)", 8200).ci().prio(STRUCTURED),
    rx("basic_auth", &["basic"], r"(?i:basic)[ \t]+(?P<secret>[A-Za-z0-9+/]{6,}={0,2})", 1100).ci().prio(STRUCTURED).check(checks::basic_credentials),
    rx("twilio_api_key", TWILIO_SK, r"SK[0-9a-fA-F]{32}", 34),
    rx("twilio_api_key", TWILIO_SK, r#"SK[0-9a-fA-F]{32}['"]?[ \t]*[,:][ \t]*['"]?(?P<secret>[A-Za-z0-9]{32})"#, 80),
    rx("twilio_account_sid", &["twilio"], r"AC[0-9a-f]{32}", 34).near(300),
    rx("twilio_auth_token", &["twilio"], r#"AC[0-9a-f]{32}['"]?[ \t]*[,:][ \t]*['"]?(?P<secret>[0-9a-f]{32})"#, 80).near(300),
    rx("sendgrid_api_key", &["SG."], r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}", 69),
    rx("npm_token", &["npm_"], r"npm_[A-Za-z0-9]{36}", 40).check(checks::crc32_token),
    rx("pypi_token", &["pypi-AgE"], r"pypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,}", 1100),
    rx("huggingface_token", &["hf_", "api_org_"], r"(?:hf|api_org)_[A-Za-z]{34}", 42).check(checks::mixed_case),
    rx("mailgun_api_key", &["key-"], r"key-[0-9a-f]{32}", 36),
    rx("shopify_token", &["shpat_", "shpca_", "shppa_", "shpss_"], r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}", 38),
    rx("digitalocean_token", &["dop_v1_", "doo_v1_", "dor_v1_"], r"do[opr]_v1_[a-f0-9]{64}", 71),
    rx("heroku_api_key", &["HRKU-"], r"HRKU-(?:AA[A-Za-z0-9_-]{58}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", 65),
    rx("vault_token", &["hvs.", "hvb.", "hvr."], r"hv[sbr]\.[A-Za-z0-9_-]{24,}", 420),
    rx("vault_token", &["vault"], r"s\.[A-Za-z0-9]{24}", 26).near(200),
    rx("databricks_token", &["dapi"], r"dapi[a-f0-9]{32}(?:-[0-9]+)?", 40),
    rx("atlassian_api_token", &["ATATT3", "ATCTT3"], r"AT[AC]TT3[A-Za-z0-9_=-]{150,}", 420),
    rx("linear_api_key", &["lin_api_", "lin_oauth_"], r"lin_(?:api_[A-Za-z0-9]{40}|oauth_[a-f0-9]{64})", 75),
    rx("notion_token", &["ntn_", "secret_"], r"ntn_[0-9]{11}[A-Za-z0-9]{35}|secret_[A-Za-z0-9]{43}", 50),
    rx("discord_bot_token", &["discord", "bot "], r"[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}", 80).near(300).check(checks::discord),
    rx("discord_webhook", &["/api/webhooks/"],
        r"(?:https?://)?(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/[A-Za-z0-9_-]{60,}", 130).before(40),
    rx("telegram_bot_token", &[":A"], r"[0-9]{5,16}:A[A-Za-z0-9_-]{33,34}", 40).before(17).bound(Bound::Digits).check(checks::telegram),
    rx("postman_api_key", &["PMAK-"], r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}", 64),
    rx("doppler_token", &["dp.pt.", "dp.st.", "dp.ct.", "dp.sa.", "dp.scim.", "dp.audit."], r"dp\.(?:pt|st|ct|sa|scim|audit)\.[A-Za-z0-9]{40,44}", 60),
    rx("pulumi_token", &["pul-"], r"pul-[a-f0-9]{40}", 44),
    rx("grafana_token", &["glsa_", "glc_", "eyJrIjoi"], r"glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/]{32,}={0,2}|eyJrIjoi[A-Za-z0-9]{70,}={0,2}", 420),
    rx("sentry_token", &["sntryu_", "sntrys_"], r"sntryu_[a-f0-9]{64}|sntrys_eyJ[A-Za-z0-9+/=_]{50,}", 420),
    rx("new_relic_key", &["NRAK-", "NRII-", "NRJS-"], r"NRAK-[A-Z0-9]{27}|NRII-[A-Za-z0-9-]{32}|NRJS-[a-f0-9]{19}", 40),
    rx("terraform_token", &[".atlasv1."], r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}", 90).before(14),
    rx("docker_hub_token", &["dckr_pat_", "dckr_oat_"], r"dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,}", 50),
    rx("rubygems_token", &["rubygems_"], r"rubygems_[a-f0-9]{48}", 57),
    rx("supabase_token", &["sbp_", "sb_secret_"], r"sbp_[a-f0-9]{40}|sb_secret_[A-Za-z0-9_-]{31,}", 80),
    rx("planetscale_token", &["pscale_"], r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_=.-]{32,}", 80),
    rx("square_token", &["sq0atp-", "sq0csp-"], r"sq0(?:atp-[A-Za-z0-9_-]{22,}|csp-[A-Za-z0-9_-]{43})", 70),
    rx("perplexity_api_key", &["pplx-"], r"pplx-[A-Za-z0-9]{48}", 53),
    rx("groq_api_key", &["gsk_"], r"gsk_[A-Za-z0-9]{52}", 56),
    rx("xai_api_key", &["xai-"], r"xai-[A-Za-z0-9]{80}", 84),
    rx("replicate_token", &["r8_"], r"r8_[A-Za-z0-9]{37}", 40),
    rx("onepassword_token", &["ops_eyJ"], r"ops_eyJ[A-Za-z0-9+/]{250,}={0,3}", 4100),
    rx("mailchimp_api_key", &["-us"], r"[0-9a-f]{32}-us[0-9]{1,2}", 5).before(32),
    rx("sk_api_key", &["sk-"], r"sk-(?:[0-9a-f]{32}|[A-Za-z0-9]{48})", 51).check(checks::not_openai),
    rx("mapbox_token", &["sk.eyJ"], r"sk\.eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}", 1100),
    rx("tailscale_key", &["tskey-"], r"tskey-(?:auth|api|client|webhook|scim)-[A-Za-z0-9]{6,}-[A-Za-z0-9]{16,}", 200),
    // Passwords on command lines, after the tool that takes them. `mysql -p secret` prompts
    // (and names the database), so only an attached `-psecret` is one.
    rx("cli_password", &["mysql", "mariadb"], concat!(command!("mysql|mariadb", "-p"), cli_value!()), 600).flag(),
    rx("cli_password", &["sshpass"], concat!(command!("sshpass", r"-p[ \t]*"), cli_value!()), 600).flag(),
    rx("cli_password", &["login"], concat!(command!(r"(?:docker|podman|nerdctl|buildah|skopeo|oras|registry)[ \t]+login", r"-p[ \t]*"), cli_value!()), 600)
        .before(16).flag(),
    rx("cli_password", &["mongo"], concat!(command!("mongo[a-z]*", r"-p[ \t]*"), cli_value!()), 600).flag(),
    rx("cli_password", &["sqlcmd", "bcp"], concat!(command!("sqlcmd|bcp", r"-P[ \t]*"), cli_value!()), 600).flag(),
    rx("cli_password", &["redis-cli"], concat!(command!("redis-cli", r"-a[ \t]+"), cli_value!()), 600).flag(),
    rx("cli_password", &["ldap"], concat!(command!("ldap(?:search|modify|add|delete|whoami|passwd|compare|modrdn|exop)", r"-w[ \t]*"), cli_value!()), 600).flag(),
    rx("basic_auth", &["curl"], curl_user!(r"'[^\s:']{1,128}:(?P<secret>[^'\n]{1,256})'"), 700).flag(),
    rx("basic_auth", &["curl"], curl_user!(r#"\\?"[^\s:"\\]{1,128}:(?P<secret>[^"\n]{1,256}?)\\?""#), 700).flag(),
    rx("basic_auth", &["curl"], curl_user!(r#"[^\s:'"]{1,128}:(?P<secret>[^\s'"]{1,256})"#), 700).flag(),
    // Oracle's `user/password@//host:1521/service` (JDBC thin, sqlplus): to the last `@` a
    // host follows.
    rx("database_uri", &["thin:"], r#"thin:[^\s/:@'"]{1,128}/(?P<secret>[^\s'"]{1,256})@(?://)?[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/:\s'",;)]|$)"#, 700)
        .ci().bound(Bound::None).prio(STRUCTURED).check(checks::cli_password),
    rx("database_uri", &["sqlplus"], r#"(?i:sqlplus)(?:[ \t]+-[A-Za-z]+)*[ \t]+['"]?[^\s/@'"]{1,128}/(?P<secret>[^\s'"@]{1,256}(?:@[^\s'"@/]{1,256})*?)(?:@|['"]?[ \t]|['"]?$)"#, 700)
        .ci().bound(Bound::None).prio(STRUCTURED).check(checks::cli_password),
    // Go's MySQL driver: `user:password@tcp(host:3306)/db`, no scheme.
    rx("database_uri", &["@tcp(", "@unix("], r#"[^\s:/'"@=]{1,128}:(?P<secret>[^\s'"]{1,256})@(?:tcp|unix)\("#, 6)
        .before(400).bound(Bound::None).prio(STRUCTURED).check(checks::cli_password),
    // `.netrc`: `machine HOST login USER password SECRET`.
    rx("password_field", &["machine"], r"(?i:machine)[ \t]+\S{1,256}[ \t]+login[ \t]+\S{1,256}[ \t]+password[ \t]+(?P<secret>\S{1,256})", 800)
        .ci().bound(Bound::None).prio(GENERIC).check(checks::cli_password),
    // A proxy given as `user:password@host` without a scheme (`http_proxy=u:p@proxy:3128`,
    // `--proxy u:p@proxy`); with a scheme the URL finder reads it. The password runs to the
    // last `@` that a host and its end follow.
    rx("url_credentials", &["proxy"],
        r#"(?i:proxy)["']?(?:[ \t]*[=:][ \t]*|[ \t]+)["']?[^\s:@/'"]{1,128}:(?P<secret>[^\s'"/][^\s'"]{0,255})@[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/\s'",;)]|$)"#, 700)
        .ci().bound(Bound::None).prio(STRUCTURED).check(checks::cli_password),
];

/// Kinds produced outside the table (card scan, URL finder, key refinements).
pub(super) const CREDIT_CARD: &str = "credit_card";
pub(super) const DATABASE_URI: &str = "database_uri";

/// URL schemes whose credentials are database or broker passwords.
pub(super) const DATABASE_SCHEMES: &[&str] = &[
    "postgres",
    "postgresql",
    "mysql",
    "mariadb",
    "mongodb",
    "mongodb+srv",
    "redis",
    "rediss",
    "amqp",
    "amqps",
    "mssql",
    "sqlserver",
    "oracle",
    "cockroachdb",
    "clickhouse",
    "neo4j",
    "couchdb",
    "memcached",
    "cassandra",
    "db2",
    "snowflake",
    "influxdb",
    "nats",
];
