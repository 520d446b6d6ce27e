/* admit_names.c — the syntax checks of apimachinery's util/validation:
 * qualified names, label values, DNS names, config keys, port names,
 * environment variable names, percentages and IP addresses, each giving
 * Kubernetes' messages word for word. DNS-1123 names come from util.c. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

#define QNAME_FMT "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
#define QNAME_MSG                                                              \
	"must consist of alphanumeric characters, '-', '_' or "                \
	"'.', and must start and end with an alphanumeric character"
#define DNS1035_FMT "[a-z]([-a-z0-9]*[a-z0-9])?"

void adm_msgs_add(struct adm_msgs *out, const char *fmt, ...)
{
	va_list ap;

	if (out->n >= ADM_MSGS)
		return;
	va_start(ap, fmt);
	vsnprintf(out->m[out->n++], sizeof out->m[0], fmt, ap);
	va_end(ap);
}

void adm_invalid_msgs(struct api_error *e, const char *path, const char *v,
    const struct adm_msgs *m)
{
	for (int i = 0; i < m->n; i++)
		adm_invalid_str(e, path, v, m->m[i]);
}

/* RegexError's wording: "<msg> (e.g. 'a',  or 'b', regex used for
 * validation is '<fmt>')" — the double space is Kubernetes'. */
static void regex_error(struct adm_msgs *out, const char *prefix,
    const char *msg, const char *fmt, const char *const *ex)
{
	char buf[400];
	size_t n =
	    (size_t)snprintf(buf, sizeof buf, "%s%s (e.g. ", prefix, msg);

	for (int i = 0; ex[i] && n < sizeof buf; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%s'%s', ",
		    i ? " or " : "", ex[i]);
	if (n < sizeof buf)
		snprintf(buf + n, sizeof buf - n,
		    "regex used for validation is '%s')", fmt);
	adm_msgs_add(out, "%s", buf);
}

static bool is_alnum(char c)
{
	return isascii((unsigned char)c) && isalnum((unsigned char)c);
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] over s[0..n) */
static bool qname_ok(const char *s, size_t n)
{
	if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

static const char *const qname_ex[] = { "MyName", "my.name", "123-abc", NULL };

/* More than one '/': the whole value is wrong, said in one message. */
static void qname_slashes(struct adm_msgs *out)
{
	int n = out->n;

	regex_error(out, "a qualified name ", QNAME_MSG, QNAME_FMT, qname_ex);
	if (out->n > n) {
		size_t l = strlen(out->m[n]);
		snprintf(out->m[n] + l, sizeof out->m[0] - l,
		    " with an optional DNS subdomain prefix and '/' (e.g. "
		    "'example.com/MyName')");
	}
}

void adm_qualified_name(const char *s, struct adm_msgs *out)
{
	const char *slash = strchr(s, '/');
	const char *name = s;

	if (slash && strchr(slash + 1, '/')) {
		qname_slashes(out);
		return;
	}
	if (slash) {
		char prefix[300];
		size_t pl = (size_t)(slash - s);
		snprintf(prefix, sizeof prefix, "%.*s", (int)pl, s);
		if (pl == 0) {
			adm_msgs_add(out, "prefix part must be non-empty");
		} else {
			const char *m = api_dns1123_subdomain(prefix);
			if (m)
				adm_msgs_add(out, "prefix part %s", m);
		}
		name = slash + 1;
	}
	if (!*name)
		adm_msgs_add(out, "name part must be non-empty");
	else if (strlen(name) > 63)
		adm_msgs_add(out,
		    "name part must be no more than 63 characters");
	if (!qname_ok(name, strlen(name)))
		regex_error(out, "name part ", QNAME_MSG, QNAME_FMT, qname_ex);
}

void adm_label_value(const char *s, struct adm_msgs *out)
{
	static const char *const ex[] = { "MyValue", "my_value", "12345",
		NULL };

	if (strlen(s) > 63)
		adm_msgs_add(out, "must be no more than 63 characters");
	if (*s && !qname_ok(s, strlen(s)))
		regex_error(out, "",
		    "a valid label must be an empty string or "
		    "consist of alphanumeric characters, '-', '_' or '.', and "
		    "must start and end with an alphanumeric character",
		    "(" QNAME_FMT ")?", ex);
}

void adm_dns1123_label(const char *s, struct adm_msgs *out)
{
	const char *m = api_dns1123_label(s);
	if (m)
		adm_msgs_add(out, "%s", m);
}

void adm_dns1123_subdomain(const char *s, struct adm_msgs *out)
{
	const char *m = api_dns1123_subdomain(s);
	if (m)
		adm_msgs_add(out, "%s", m);
}

void adm_dns1035_label(const char *s, struct adm_msgs *out)
{
	static const char *const ex[] = { "my-name", "abc-123", NULL };
	size_t n = strlen(s);
	bool ok = n > 0 && s[0] >= 'a' && s[0] <= 'z' &&
	    (isdigit((unsigned char)s[n - 1]) ||
		(s[n - 1] >= 'a' && s[n - 1] <= 'z'));

	for (size_t i = 0; ok && i < n; i++)
		ok = (s[i] >= 'a' && s[i] <= 'z') ||
		    isdigit((unsigned char)s[i]) || s[i] == '-';
	if (n > 63)
		adm_msgs_add(out, "must be no more than 63 characters");
	if (!ok)
		regex_error(out, "",
		    "a DNS-1035 label must consist of lower "
		    "case alphanumeric characters or '-', start with an "
		    "alphabetic character, and end with an alphanumeric "
		    "character",
		    DNS1035_FMT, ex);
}

/* A generateName may end in '-': check it as if it ended in 'a'. */
static const char *mask_dash(const char *s, bool prefix, char *buf, size_t len)
{
	size_t n = strlen(s);

	if (!prefix || n < 2 || s[n - 1] != '-' || n >= len)
		return s;
	memcpy(buf, s, n + 1);
	buf[n - 1] = 'a';
	return buf;
}

void adm_name_subdomain(const char *s, bool prefix, struct adm_msgs *out)
{
	char buf[400];
	adm_dns1123_subdomain(mask_dash(s, prefix, buf, sizeof buf), out);
}

void adm_name_label(const char *s, bool prefix, struct adm_msgs *out)
{
	char buf[400];
	adm_dns1123_label(mask_dash(s, prefix, buf, sizeof buf), out);
}

void adm_name_1035(const char *s, bool prefix, struct adm_msgs *out)
{
	char buf[400];
	adm_dns1035_label(mask_dash(s, prefix, buf, sizeof buf), out);
}

/* "must not be '.'" and friends (hasChDirPrefix). */
static void chdir_prefix(const char *s, struct adm_msgs *out)
{
	if (!strcmp(s, "."))
		adm_msgs_add(out, "must not be '.'");
	else if (!strcmp(s, ".."))
		adm_msgs_add(out, "must not be '..'");
	else if (!strncmp(s, "..", 2))
		adm_msgs_add(out, "must not start with '..'");
}

void adm_config_key(const char *s, struct adm_msgs *out)
{
	static const char *const ex[] = { "key.name", "KEY_NAME", "key-name",
		NULL };
	bool ok = *s != 0;

	for (const char *p = s; ok && *p; p++)
		ok = is_alnum(*p) || strchr("-._", *p);
	if (strlen(s) > 253)
		adm_msgs_add(out, "must be no more than 253 characters");
	if (!ok)
		regex_error(out, "",
		    "a valid config key must consist of "
		    "alphanumeric characters, '-', '_' or '.'",
		    "[-._a-zA-Z0-9]+", ex);
	chdir_prefix(s, out);
}

void adm_port_name(const char *s, struct adm_msgs *out)
{
	size_t n = strlen(s);
	bool charset = n > 0, letter = false;

	for (size_t i = 0; i < n; i++) {
		if (s[i] >= 'a' && s[i] <= 'z')
			letter = true;
		else if (!isdigit((unsigned char)s[i]) && s[i] != '-')
			charset = false;
	}
	if (n > 15)
		adm_msgs_add(out, "must be no more than 15 characters");
	if (!charset)
		adm_msgs_add(out,
		    "must contain only alpha-numeric characters "
		    "(a-z, 0-9), and hyphens (-)");
	else if (!letter)
		adm_msgs_add(out, "must contain at least one letter (a-z)");
	if (strstr(s, "--"))
		adm_msgs_add(out, "must not contain consecutive hyphens");
	if (n > 0 && (s[0] == '-' || s[n - 1] == '-'))
		adm_msgs_add(out, "must not begin or end with a hyphen");
}

/* IsRelaxedEnvVarName: RelaxedEnvironmentVariableValidation is on by
 * default from Kubernetes 1.32. */
void adm_env_name(const char *s, struct adm_msgs *out)
{
	if (!*s)
		adm_msgs_add(out,
		    "environment variable name must be non-empty");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p > 126 || *p < 32 || *p == '=') {
			adm_msgs_add(out,
			    "a valid environment variable name "
			    "must consist only of printable ASCII characters "
			    "other than '='");
			break;
		}
	}
}

void adm_percent(const char *s, struct adm_msgs *out)
{
	static const char *const ex[] = { "1%", "93%", NULL };
	size_t n = strlen(s);
	bool ok = n >= 2 && s[n - 1] == '%';

	for (size_t i = 0; ok && i + 1 < n; i++)
		ok = isdigit((unsigned char)s[i]);
	if (!ok)
		regex_error(out, "",
		    "a valid percent string must be a numeric "
		    "string followed by an ending '%'",
		    "[0-9]+%", ex);
}

/* --- IP addresses ------------------------------------------------------------ */

/* Go's ParseIP accepts dotted quads with leading zeros (as decimal). */
static bool parse_v4(const char *s, unsigned char out[4])
{
	for (int i = 0; i < 4; i++) {
		unsigned v = 0;
		int digits = 0;
		while (isdigit((unsigned char)*s) && digits < 4) {
			v = v * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		if (!digits || v > 255)
			return false;
		out[i] = (unsigned char)v;
		if (i < 3 && *s++ != '.')
			return false;
	}
	return *s == 0;
}

int adm_ip_family(const char *s)
{
	unsigned char b[16];

	if (!s || !*s)
		return 0;
	if (parse_v4(s, b))
		return 4;
	if (strchr(s, ':') && inet_pton(AF_INET6, s, b) == 1) {
		static const unsigned char
		    mapped[12] = { [10] = 0xff, [11] = 0xff };
		return memcmp(b, mapped, 12) ? 6 : 4;
	}
	return 0;
}

void adm_valid_ip(struct api_error *e, const char *path, const char *s)
{
	if (!adm_ip_family(s))
		adm_invalid_str(e, path, s,
		    "must be a valid IP address, (e.g. "
		    "10.9.8.7 or 2001:db8::ffff)");
}

void adm_valid_cidr(struct api_error *e, const char *path, const char *s)
{
	const char *slash = strchr(s, '/');
	char ip[64];
	char *end;
	long bits = -1;
	int fam = 0;

	if (slash && (size_t)(slash - s) < sizeof ip) {
		snprintf(ip, sizeof ip, "%.*s", (int)(slash - s), s);
		fam = adm_ip_family(ip);
		if (isdigit((unsigned char)slash[1]))
			bits = strtol(slash + 1, &end, 10);
		if (bits >= 0 && *end)
			bits = -1;
	}
	if (!fam || bits < 0 || bits > (fam == 4 ? 32 : 128))
		adm_invalid_str(e, path, s,
		    "must be a valid CIDR value, (e.g. "
		    "10.9.8.0/24 or 2001:db8::/64)");
}

void adm_non_special_ip(struct api_error *e, const char *path, const char *s)
{
	unsigned char b[16];
	int fam = adm_ip_family(s);
	bool unspec, loop, ll, llm;

	if (!fam) {
		adm_invalid_str(e, path, s, "must be a valid IP address");
		return;
	}
	if (fam == 4 && parse_v4(s, b)) {
		unspec = !b[0] && !b[1] && !b[2] && !b[3];
		loop = b[0] == 127;
		ll = b[0] == 169 && b[1] == 254;
		llm = b[0] == 224 && b[1] == 0 && b[2] == 0;
	} else {
		static const unsigned char zero[16], one[16] = { [15] = 1 };
		inet_pton(AF_INET6, s, b);
		unspec = !memcmp(b, zero, 16);
		loop = !memcmp(b, one, 16);
		ll = b[0] == 0xfe && (b[1] & 0xc0) == 0x80;
		llm = b[0] == 0xff && (b[1] & 0x0f) == 0x02;
	}
	if (unspec) {
		char d[128];
		snprintf(d, sizeof d, "may not be unspecified (%s)", s);
		adm_invalid_str(e, path, s, d);
	}
	if (loop)
		adm_invalid_str(e, path, s,
		    "may not be in the loopback range (127.0.0.0/8, ::1/128)");
	if (ll)
		adm_invalid_str(e, path, s,
		    "may not be in the link-local range "
		    "(169.254.0.0/16, fe80::/10)");
	if (llm)
		adm_invalid_str(e, path, s,
		    "may not be in the link-local "
		    "multicast range (224.0.0.0/24, ff02::/10)");
}
