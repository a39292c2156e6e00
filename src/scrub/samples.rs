//! Synthetic credentials of every family the scrubber knows, for tests, benches and demo
//! traffic. Each is generated from a seed, has the family's exact public shape (checksums
//! included) and is not a real credential.
//!
//! A [`Sample`] carries the secret, a line of text it typically appears in (`text`), and, for
//! families recognised by their key name, the key it is found under (`key`).

/// One planted credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The kind the scrubber must report.
    pub kind: &'static str,
    /// The exact characters that must not survive.
    pub secret: String,
    /// A line of text containing the secret with the context it needs.
    pub text: String,
    /// For context-only families: a key under which the bare secret is recognised.
    pub key: Option<&'static str>,
}

/// A deterministic generator (splitmix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `n` characters drawn from `alphabet`.
    pub fn chars(&mut self, alphabet: &str, n: usize) -> String {
        let a = alphabet.as_bytes();
        (0..n).map(|_| char::from(a[self.below(a.len())])).collect()
    }
}

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The alphabet for a template class letter.
fn class(c: u8) -> &'static str {
    match c {
        b'a' => ALNUM,
        b'x' => "0123456789abcdef",
        b'X' => "0123456789ABCDEF",
        b'd' => "0123456789",
        b'U' => "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        b'L' => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        b'w' => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
        b'b' => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        b'2' => "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
        b'B' => "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L",
        _ => "x",
    }
}

/// Expands `{c:n}` (n characters of class `c`) in a template; other text is copied.
pub fn fill(rng: &mut Rng, template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let spec = &rest[open + 1..open + close];
        match spec
            .split_once(':')
            .and_then(|(c, n)| Some((c.bytes().next()?, n.parse().ok()?)))
        {
            Some((c, n)) => out.push_str(&rng.chars(class(c), n)),
            None => out.push_str(&rest[open..=open + close]),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// How a family's secret is made.
enum Gen {
    /// A template (see [`fill`]).
    T(&'static str),
    /// `prefix` + 30 random base62 + CRC32 checksum (GitHub, npm).
    Crc(&'static str),
    Jwt,
    Pem,
    Basic,
    Discord,
    Card,
    Uuid,
}

/// (kind, secret, text with `{s}` for the secret, key for context-only families)
#[rustfmt::skip]
const SPECS: &[(&str, Gen, &str, Option<&str>)] = &[
    ("github_token", Gen::Crc("ghp_"), "export GITHUB_TOKEN={s}", None),
    ("github_token", Gen::Crc("ghs_"), "git remote set-url origin https://x-access-token:{s}@github.com/o/r.git", None),
    ("github_fine_grained_token", Gen::T("github_pat_{a:22}_{a:59}"), "GH_PAT={s}", None),
    ("gitlab_token", Gen::T("glpat-{a:20}"), "PRIVATE-TOKEN: {s}", None),
    ("aws_access_key_id", Gen::T("AKIA{2:16}"), "aws_access_key_id = {s}", None),
    ("aws_secret_access_key", Gen::T("{b:18}a7Q{b:19}"), "aws_secret_access_key = {s}", Some("aws_secret_access_key")),
    ("google_api_key", Gen::T("AIza{w:35}"), "https://maps.googleapis.com/maps/api/geocode/json?address=x&key={s}", None),
    ("google_oauth_client_secret", Gen::T("GOCSPX-{w:28}"), "client_secret: {s}", None),
    ("google_oauth_token", Gen::T("ya29.{w:120}"), "access_token={s}", None),
    ("slack_token", Gen::T("xoxb-{d:12}-{d:13}-{a:24}"), "SLACK_BOT_TOKEN={s}", None),
    ("slack_webhook", Gen::T("https://hooks.slack.com/services/T{U:8}/B{U:10}/{a:24}"), "posting to {s} now", None),
    ("stripe_key", Gen::T("sk_live_{a:24}"), "stripe.api_key = '{s}'", None),
    ("stripe_key", Gen::T("rk_test_{a:99}"), "restricted key {s}", None),
    ("webhook_secret", Gen::T("whsec_{b:32}"), "signing secret {s}", None),
    ("openai_key", Gen::T("sk-proj-{a:74}T3BlbkFJ{a:74}"), "OPENAI_API_KEY={s}", None),
    ("openai_key", Gen::T("sk-{a:20}T3BlbkFJ{a:20}"), "openai.api_key = \"{s}\"", None),
    ("anthropic_key", Gen::T("sk-ant-api03-{w:93}AA"), "x-api-key: {s}", None),
    ("jwt", Gen::Jwt, "Authorization: Bearer {s}", None),
    ("private_key", Gen::Pem, "{s}", None),
    ("age_secret_key", Gen::T("AGE-SECRET-KEY-1{B:58}"), "# created: 2024-01-01\n{s}", None),
    ("azure_storage_key", Gen::T("{b:86}=="), "AZURE_STORAGE_KEY={s}", Some("azure_storage_key")),
    ("azure_connection_string", Gen::T("{b:86}=="), "DefaultEndpointsProtocol=https;AccountName=prodstore;AccountKey={s};EndpointSuffix=core.windows.net", None),
    ("azure_sas_token", Gen::T("{b:40}%3D"), "https://acct.blob.core.windows.net/c/r.csv?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01T00:00:00Z&spr=https&sig={s}", None),
    ("azure_client_secret", Gen::T("{a:3}8Q~{w:34}"), "AZURE_CLIENT_SECRET={s}", None),
    ("database_uri", Gen::T("{a:20}"), "postgres://app:{s}@db.internal:5432/app", None),
    ("database_uri", Gen::T("{a:16}"), "mongodb+srv://admin:{s}@cluster0.example.net/test?retryWrites=true", None),
    ("database_uri", Gen::T("{a:16}"), "redis://:{s}@cache:6379/0", None),
    ("database_uri", Gen::T("{a:16}"), "amqp://guest:{s}@rabbit:5672/", None),
    ("database_uri", Gen::T("{a:16}"), "mysql://root:{s}@127.0.0.1:3306/shop", None),
    ("url_credentials", Gen::T("{a:16}"), "git clone https://deploy:{s}@git.example.com/team/repo.git", None),
    ("bearer_token", Gen::T("{a:48}"), "curl -H 'Authorization: Bearer {s}' https://api.example.com/v1", None),
    ("basic_auth", Gen::Basic, "Authorization: Basic {s}", None),
    ("twilio_api_key", Gen::T("SK{x:32}"), "TWILIO_API_KEY={s}", None),
    ("twilio_account_sid", Gen::T("AC{x:32}"), "twilio account {s}", None),
    ("twilio_auth_token", Gen::T("{x:32}"), "TWILIO_AUTH_TOKEN={s}", Some("twilio_auth_token")),
    ("sendgrid_api_key", Gen::T("SG.{w:22}.{w:43}"), "SENDGRID={s}", None),
    ("npm_token", Gen::Crc("npm_"), "//registry.npmjs.org/:_authToken={s}", None),
    ("pypi_token", Gen::T("pypi-AgEIcHlwaS5vcmc{w:70}"), "password = {s}", None),
    ("huggingface_token", Gen::T("hf_{L:16}Qz{L:16}"), "HF_TOKEN={s}", None),
    ("datadog_api_key", Gen::T("{x:32}"), "DD_API_KEY={s}", Some("dd_api_key")),
    ("datadog_app_key", Gen::T("{x:40}"), "DD_APP_KEY={s}", Some("dd_app_key")),
    ("mailgun_api_key", Gen::T("key-{x:32}"), "mailgun: {s}", None),
    ("shopify_token", Gen::T("shpat_{x:32}"), "X-Shopify-Access-Token: {s}", None),
    ("digitalocean_token", Gen::T("dop_v1_{x:64}"), "doctl auth init -t {s}", None),
    ("heroku_api_key", Gen::T("HRKU-AA{w:58}"), "heroku: {s}", None),
    ("heroku_api_key", Gen::Uuid, "HEROKU_API_KEY={s}", Some("heroku_api_key")),
    ("vault_token", Gen::T("hvs.{w:90}"), "VAULT_TOKEN={s}", None),
    ("vault_token", Gen::T("s.{a:24}"), "vault login {s}", Some("vault_token")),
    ("databricks_token", Gen::T("dapi{x:32}"), "databricks token {s}", None),
    ("atlassian_api_token", Gen::T("ATATT3xFfGF0{w:170}={X:8}"), "jira api token {s}", None),
    ("linear_api_key", Gen::T("lin_api_{a:40}"), "LINEAR={s}", None),
    ("notion_token", Gen::T("ntn_{d:11}{a:35}"), "NOTION={s}", None),
    ("notion_token", Gen::T("secret_{a:43}"), "notion integration {s}", None),
    ("discord_bot_token", Gen::Discord, "Authorization: Bot {s}", Some("discord_bot_token")),
    ("discord_webhook", Gen::T("https://discord.com/api/webhooks/{d:18}/{w:68}"), "webhook {s}", None),
    ("telegram_bot_token", Gen::T("{d:10}:AA{w:33}"), "https://api.telegram.org/bot{s}/sendMessage", None),
    ("credit_card", Gen::Card, "card {s} exp 12/29", None),
    ("password_field", Gen::T("{a:6}!{a:6}"), "password: {s}", Some("password")),
    ("password_field", Gen::T("{a:10}"), "DB_PASSWORD={s}", Some("db_password")),
    ("postman_api_key", Gen::T("PMAK-{x:24}-{x:34}"), "postman {s}", None),
    ("doppler_token", Gen::T("dp.pt.{a:43}"), "DOPPLER={s}", None),
    ("pulumi_token", Gen::T("pul-{x:40}"), "PULUMI={s}", None),
    ("grafana_token", Gen::T("glsa_{a:32}_{x:8}"), "GRAFANA={s}", None),
    ("sentry_token", Gen::T("sntryu_{x:64}"), "SENTRY={s}", None),
    ("new_relic_key", Gen::T("NRAK-{U:27}"), "NEW_RELIC={s}", None),
    ("terraform_token", Gen::T("{a:14}.atlasv1.{w:67}"), "TFE={s}", None),
    ("docker_hub_token", Gen::T("dckr_pat_{w:27}"), "docker login -p {s}", None),
    ("rubygems_token", Gen::T("rubygems_{x:48}"), "GEM={s}", None),
    ("supabase_token", Gen::T("sbp_{x:40}"), "SUPABASE={s}", None),
    ("planetscale_token", Gen::T("pscale_tkn_{w:43}"), "PSCALE={s}", None),
    ("square_token", Gen::T("sq0atp-{w:22}"), "SQUARE={s}", None),
    ("perplexity_api_key", Gen::T("pplx-{a:48}"), "PPLX={s}", None),
    ("groq_api_key", Gen::T("gsk_{a:52}"), "GROQ={s}", None),
    ("xai_api_key", Gen::T("xai-{a:80}"), "XAI={s}", None),
    ("replicate_token", Gen::T("r8_{a:37}"), "REPLICATE={s}", None),
    ("onepassword_token", Gen::T("ops_eyJ{b:300}"), "OP_SERVICE_ACCOUNT={s}", None),
    // Passwords as people paste them: unescaped reserved characters, connection strings, flags.
    ("twilio_api_key", Gen::T("SK{x:32}"), "rotated key sid {s} yesterday", None),
    ("database_uri", Gen::T("{a:6}#{a:4}!@{a:4}"), "postgres://app:{s}@db:5432/x", None),
    ("url_credentials", Gen::T("{a:8}@{a:4}/{a:3}"), "https://bot:{s}@api.example.com/v1", None),
    ("database_uri", Gen::T("{a:8}#{a:3}"), "DSN=root:{s}@tcp(db:3306)/app", None),
    ("password_field", Gen::T("{a:5}&{a:3}({d:1})!"), "Server=db;User Id=sa;Password={s};Encrypt=true", None),
    ("cli_password", Gen::T("{a:6}#{a:4}"), "mysql -h db -u root -p{s} shop", None),
    ("basic_auth", Gen::T("{a:6}@{a:4}!"), "curl -u admin:{s} https://ci.example.com/api", None),
    ("mailchimp_api_key", Gen::T("{x:32}-us{d:2}"), "mailchimp {s}", None),
    ("sk_api_key", Gen::T("sk-{x:32}"), "DEEPSEEK {s}", None),
    ("mapbox_token", Gen::T("sk.eyJ1Ijoi{w:40}.{w:22}"), "mapbox {s}", None),
    ("tailscale_key", Gen::T("tskey-auth-{a:12}-{a:32}"), "TS_AUTHKEY={s}", None),
];

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn generate(rng: &mut Rng, g: &Gen) -> String {
    use base64::Engine as _;
    match g {
        Gen::T(t) => fill(rng, t),
        Gen::Crc(prefix) => {
            let random = rng.chars(ALNUM, 30);
            let check = super::checks::base62_checksum(crc32fast::hash(random.as_bytes()));
            format!("{prefix}{random}{}", String::from_utf8_lossy(&check))
        }
        Gen::Jwt => {
            let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
            let payload = b64url(
                format!(
                    r#"{{"sub":"{}","iat":{}}}"#,
                    fill(rng, "{x:16}"),
                    1_700_000_000 + rng.below(1 << 20)
                )
                .as_bytes(),
            );
            format!("{header}.{payload}.{}", fill(rng, "{w:43}"))
        }
        Gen::Pem => {
            let lines: Vec<String> = (0..6).map(|_| fill(rng, "{b:64}")).collect();
            let kind = rng.pick(&["RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", ""]);
            format!(
                "-----BEGIN {kind}PRIVATE KEY-----\n{}\n{}==\n-----END {kind}PRIVATE KEY-----",
                lines.join("\n"),
                fill(rng, "{b:20}")
            )
        }
        Gen::Basic => {
            let creds = fill(rng, "svc-{a:6}:{a:14}");
            base64::engine::general_purpose::STANDARD.encode(creds)
        }
        Gen::Discord => {
            let id = format!("1{}", fill(rng, "{d:17}"));
            format!(
                "{}.{}.{}",
                b64url(id.as_bytes()),
                fill(rng, "{w:6}"),
                fill(rng, "{w:38}")
            )
        }
        Gen::Card => {
            let mut digits: Vec<u8> = b"4"
                .iter()
                .copied()
                .chain((0..14).map(|_| b'0' + rng.below(10) as u8))
                .collect();
            let check = (0..10u8).find(|d| {
                let mut candidate = digits.clone();
                candidate.push(b'0' + d);
                super::checks::luhn(&String::from_utf8_lossy(&candidate))
            });
            digits.push(b'0' + check.unwrap_or(0));
            let s = String::from_utf8_lossy(&digits).into_owned();
            format!("{} {} {} {}", &s[0..4], &s[4..8], &s[8..12], &s[12..16])
        }
        Gen::Uuid => fill(rng, "{x:8}-{x:4}-4{x:3}-a{x:3}-{x:12}"),
    }
}

/// One sample of every family (some families have several shapes), from `seed`.
pub fn all(seed: u64) -> Vec<Sample> {
    let mut rng = Rng::new(seed);
    SPECS
        .iter()
        .map(|(kind, g, text, key)| {
            let secret = generate(&mut rng, g);
            Sample {
                kind,
                text: text.replace("{s}", &secret),
                secret,
                key: *key,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_and_determinism() {
        let mut rng = Rng::new(1);
        let s = fill(&mut rng, "pre_{x:8}_{d:3}{nope}");
        assert_eq!(s.len(), "pre_".len() + 8 + 1 + 3 + "{nope}".len());
        assert_eq!(all(5), all(5));
        assert_ne!(all(5), all(6));
    }

    #[test]
    fn generated_shapes_pass_their_checks() {
        for s in all(3) {
            match s.kind {
                "github_token" | "npm_token" => {
                    assert!(super::super::checks::crc32_token(&s.secret), "{s:?}")
                }
                "jwt" => assert!(super::super::checks::jwt(&s.secret)),
                "discord_bot_token" => assert!(super::super::checks::discord(&s.secret)),
                "basic_auth" if s.text.starts_with("Authorization") => {
                    assert!(super::super::checks::basic_credentials(&s.secret))
                }
                "credit_card" => assert!(super::super::checks::luhn(&s.secret)),
                _ => {}
            }
            assert!(s.text.contains(&s.secret));
        }
    }
}
