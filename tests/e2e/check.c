/* tests/e2e/check.c — run a command, check what it printed, count. */
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"
#include "harness.h"

#define MAX_EXPECT 16
#define SHOW_MAX 3000

void e2e_pass(struct e2e *e, const char *name)
{
	e->passed++;
	printf("ok   %s\n", name);
	fflush(stdout);
}

void e2e_fail(struct e2e *e, const char *name, const char *fmt, ...)
{
	va_list ap;
	e->failed++;
	printf("FAIL %s\n     ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

void e2e_skip(struct e2e *e, const char *name, const char *why)
{
	e->skipped++;
	printf("skip %s: %s\n", name, why);
	fflush(stdout);
}

static bool line_matches(const char *out, const char *re, char *why,
    size_t whylen)
{
	regex_t rx;
	if (regcomp(&rx, re, REG_EXTENDED | REG_NEWLINE | REG_NOSUB)) {
		snprintf(why, whylen, "bad regex in the test: %s", re);
		return false;
	}
	bool ok = regexec(&rx, out, 0, NULL, 0) == 0;
	regfree(&rx);
	if (!ok)
		snprintf(why, whylen, "no line matches /%s/", re);
	return ok;
}

static bool whole_is(const char *out, const char *want, char *why,
    size_t whylen)
{
	size_t n = strlen(out);
	while (n &&
	    (out[n - 1] == '\n' || out[n - 1] == ' ' || out[n - 1] == '\r'))
		n--;
	if (strlen(want) == n && !strncmp(out, want, n))
		return true;
	snprintf(why, whylen, "expected exactly: %s", want);
	return false;
}

static bool one_expect(const char *out, const char *x, char *why, size_t whylen)
{
	switch (x[0]) {
	case '=':
		return whole_is(out, x + 1, why, whylen);
	case '~':
		return line_matches(out, x + 1, why, whylen);
	case '!':
		if (strstr(out, x + 1) == NULL)
			return true;
		snprintf(why, whylen, "must not print: %s", x + 1);
		return false;
	default:
		if (strstr(out, x))
			return true;
		snprintf(why, whylen, "expected to see: %s", x);
		return false;
	}
}

bool e2e_expect(const char *out, const char *const *expect, char *why,
    size_t whylen)
{
	for (size_t i = 0; expect && expect[i]; i++)
		if (!one_expect(out ? out : "", expect[i], why, whylen))
			return false;
	return true;
}

char *e2e_kubectl_cmd(struct e2e *e, const char *kubectl)
{
	char *cmd;
	if (asprintf(&cmd,
		"KUBECONFIG='%s' HOME='%s' timeout 60 '%s' --cache-dir='%s/.kube/cache' "
		"--request-timeout=30s",
		e->kubeconfig, e->home, kubectl, e->home) < 0)
		return NULL;
	return cmd;
}

/* Run cmd and judge it; `want` 0: exit 0, 1: a non-zero exit. */
static bool judge(struct e2e *e, const char *name, int want, const char *cmd,
    const char *const *expect)
{
	char *out = NULL, why[512] = "";
	int rc = kbt_run(cmd, &out);
	bool status_ok = want ? rc != 0 : rc == 0;
	bool ok = status_ok && e2e_expect(out, expect, why, sizeof(why));
	if (!status_ok)
		snprintf(why, sizeof(why), "exit status %d, expected %s", rc,
		    want ? "a failure" : "0");
	if (ok) {
		e2e_pass(e, name);
	} else {
		size_t n = out ? strlen(out) : 0;
		e2e_fail(e, name, "%s\n     $ %s\n     output%s:\n%.*s%s", why,
		    cmd, n > SHOW_MAX ? " (cut)" : "", SHOW_MAX, out ? out : "",
		    n && out[n - 1] == '\n' ? "" : "\n");
	}
	free(out);
	return ok;
}

bool e2e_kubectl_with(struct e2e *e, const char *kubectl, const char *name,
    int want, const char *args, const char *const *expect)
{
	char *pre = e2e_kubectl_cmd(e, kubectl), *cmd = NULL;
	if (pre == NULL || asprintf(&cmd, "%s %s", pre, args) < 0) {
		free(pre);
		return false;
	}
	bool ok = judge(e, name, want, cmd, expect);
	free(pre);
	free(cmd);
	return ok;
}

static size_t collect(va_list ap, const char **expect)
{
	size_t n = 0;
	const char *x;
	while ((x = va_arg(ap, const char *)) != NULL && n < MAX_EXPECT)
		expect[n++] = x;
	expect[n] = NULL;
	return n;
}

bool e2e_kubectl(struct e2e *e, const char *name, int want, const char *args,
    ...)
{
	const char *expect[MAX_EXPECT + 1];
	va_list ap;
	va_start(ap, args);
	collect(ap, expect);
	va_end(ap);
	return e2e_kubectl_with(e, e->kubectl, name, want, args, expect);
}

/* cmd with every "KUBECTL" replaced by the kubectl prefix (malloc'd). */
static char *expand(struct e2e *e, const char *cmd)
{
	char *pre = e2e_kubectl_cmd(e, e->kubectl);
	size_t cap = strlen(cmd) + 1, plen = pre ? strlen(pre) : 0;
	for (const char *p = cmd; (p = strstr(p, "KUBECTL")); p += 7)
		cap += plen;
	char *out = pre ? malloc(cap) : NULL;
	if (out == NULL) {
		free(pre);
		return NULL;
	}
	char *w = out;
	for (const char *p = cmd; *p;) {
		if (!strncmp(p, "KUBECTL", 7)) {
			memcpy(w, pre, plen);
			w += plen;
			p += 7;
		} else {
			*w++ = *p++;
		}
	}
	*w = '\0';
	free(pre);
	return out;
}

bool e2e_sh(struct e2e *e, const char *name, int want, const char *cmd, ...)
{
	const char *expect[MAX_EXPECT + 1];
	va_list ap;
	va_start(ap, cmd);
	collect(ap, expect);
	va_end(ap);
	char *full = expand(e, cmd);
	if (full == NULL)
		return false;
	bool ok = judge(e, name, want, full, expect);
	free(full);
	return ok;
}
