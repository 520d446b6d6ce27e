/* admit_probe.c — probes and lifecycle handlers (validateProbe,
 * validateHandler): exactly one handler, its port, path, scheme and
 * headers, non-negative timings, and the per-kind rules (successThreshold
 * 1 for liveness and startup, no terminationGracePeriodSeconds for
 * readiness). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

static void http_get(const json_t *h, const char *path, struct api_error *e)
{
	static const char *const schemes[] = { "HTTP", "HTTPS", NULL };
	char p[ADM_PATH];
	const char *scheme = adm_str(h, "scheme") ?: "";
	size_t i;
	json_t *hdr;

	adm_required_field(h, "path", path, e);
	adm_port_num_or_name(json_object_get(h, "port"),
	    adm_path(p, "%s.port", path), e);
	if (!adm_in_list(scheme, schemes))
		adm_unsupported(e, adm_path(p, "%s.scheme", path), scheme,
		    schemes);
	json_array_foreach(adm_arr(h, "httpHeaders"), i, hdr) {
		const char *n = adm_str(hdr, "name") ?: "";
		bool ok = *n != 0;
		for (const char *q = n; *q; q++)
			ok &= (*q > 32 && *q < 127 &&
			    !strchr("\"(),/:;<=>?@[\\]{}", *q));
		if (!ok)
			adm_invalid_str(e, adm_path(p, "%s.httpHeaders", path),
			    n,
			    "a valid HTTP header must consist of alphanumeric "
			    "characters or '-' (e.g. 'X-Header-Name', regex used "
			    "for validation is '[-A-Za-z0-9]+')");
	}
}

static void sleep_action(const json_t *s, const char *path,
    struct adm_podctx *c, struct api_error *e)
{
	long long secs = 0;
	char d[200];

	adm_int(s, "seconds", &secs);
	if (!c->have_grace || (secs > 0 && secs <= c->grace))
		return;
	snprintf(d, sizeof d,
	    "must be greater than 0 and less than "
	    "terminationGracePeriodSeconds (%lld). Enable "
	    "AllowPodLifecycleSleepActionZeroValue feature gate for zero sleep.",
	    c->grace);
	adm_invalid_int(e, path, secs, d);
}

static void handler(const json_t *h, const char *path, bool lifecycle,
    struct adm_podctx *c, struct api_error *e)
{
	static const char *const kinds[] = { "exec", "httpGet", "tcpSocket",
		"grpc", "sleep" };
	char p[ADM_PATH];
	int n = 0;

	for (int i = 0; i < 5; i++) {
		json_t *x = adm_obj(h, kinds[i]);
		/* probes have no sleep, lifecycle handlers no grpc */
		if (!x || (i == 3 && lifecycle) || (i == 4 && !lifecycle))
			continue;
		adm_path(p, "%s.%s", path, kinds[i]);
		if (n++) {
			adm_forbidden(e, p,
			    "may not specify more than 1 handler type");
			continue;
		}
		if (i == 0 && !json_array_size(adm_arr(x, "command")))
			adm_required(e, adm_path(p, "%s.exec.command", path),
			    "");
		else if (i == 1)
			http_get(x, p, e);
		else if (i == 2 || i == 3)
			adm_port_num_or_name(json_object_get(x, "port"),
			    adm_path(p, "%s.%s.port", path, kinds[i]), e);
		else if (i == 4)
			sleep_action(x, adm_path(p, "%s.sleep", path), c, e);
	}
	if (!n)
		adm_required(e, path, "must specify a handler type");
}

void adm_lifecycle_validate(const json_t *lc, const char *path,
    struct adm_podctx *c, struct api_error *e)
{
	char p[ADM_PATH];

	if (adm_obj(lc, "postStart"))
		handler(adm_obj(lc, "postStart"),
		    adm_path(p, "%s.postStart", path), true, c, e);
	if (adm_obj(lc, "preStop"))
		handler(adm_obj(lc, "preStop"), adm_path(p, "%s.preStop", path),
		    true, c, e);
}

void adm_probe_validate(const json_t *probe, const char *path, int kind,
    struct adm_podctx *c, struct api_error *e)
{
	static const char *const nonneg[] = { "initialDelaySeconds",
		"timeoutSeconds", "periodSeconds", "successThreshold",
		"failureThreshold" };
	char p[ADM_PATH];
	long long v;

	if (!probe)
		return;
	handler(probe, path, false, c, e);
	for (int i = 0; i < 5; i++)
		adm_nonneg(e, adm_path(p, "%s.%s", path, nonneg[i]),
		    json_object_get(probe, nonneg[i]));
	adm_path(p, "%s.terminationGracePeriodSeconds", path);
	if (adm_int(probe, "terminationGracePeriodSeconds", &v) && v <= 0)
		adm_invalid_int(e, p, v, "must be greater than 0");
	if (kind == ADM_PROBE_READINESS &&
	    json_object_get(probe, "terminationGracePeriodSeconds"))
		adm_invalid_json(e, p,
		    json_object_get(probe, "terminationGracePeriodSeconds"),
		    "must not be set for readinessProbes");
	if (kind != ADM_PROBE_READINESS &&
	    adm_int(probe, "successThreshold", &v) && v != 1)
		adm_invalid_int(e, adm_path(p, "%s.successThreshold", path), v,
		    "must be 1");
}
