/* plugins/ctrl-serviceaccount/plugin.c — the ServiceAccount controller, as
 * kube-controller-manager's serviceaccount-controller: every namespace that
 * is not terminating has the ServiceAccounts named in config (`default`),
 * and one deleted by hand comes back. Keys are namespace names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrl.h"

struct sac_cfg {
	struct ctrl_conf ctl;
	char **accounts;
};

struct sac {
	struct ctrl c;
	struct sac_cfg cfg;
	struct kb_informer *nss, *sas;
};

static const struct kb_opt opts[] = {
	CTRL_OPTS(struct sac_cfg, ctl),
	KB_OPT_STRLIST("service_accounts", struct sac_cfg, accounts,
	    "the ServiceAccounts every namespace gets (default: [default])"),
	KB_OPT_END,
};

static const char *const default_accounts[] = { "default", NULL };

static const char *const *accounts(const struct sac *s)
{
	return s->cfg.accounts && s->cfg.accounts[0] ?
	    (const char *const *)s->cfg.accounts :
	    default_accounts;
}

/* --- events ------------------------------------------------------------------------ */

static void ns_add(void *arg, const msgpack_object *ns)
{
	struct sac *s = arg;
	const char *name;
	size_t len;
	char key[256];
	if (kb_mp_str(ns, "metadata.name", &name, &len) && len < sizeof(key)) {
		snprintf(key, sizeof(key), "%.*s", (int)len, name);
		ctrl_enqueue(&s->c, key);
	}
}

static void ns_update(void *arg, const msgpack_object *old,
    const msgpack_object *ns)
{
	ns_add(arg, ns);
}

static void ns_del(void *arg, const msgpack_object *ns)
{
}

/* A managed account gone (or changed): look at its namespace again. */
static void sa_event(struct sac *s, const msgpack_object *sa)
{
	const char *name, *ns;
	size_t len, nslen;
	if (!kb_mp_str(sa, "metadata.name", &name, &len) ||
	    !kb_mp_str(sa, "metadata.namespace", &ns, &nslen) || nslen >= 256)
		return;
	for (const char *const *a = accounts(s); *a; a++) {
		if (strlen(*a) == len && !memcmp(*a, name, len)) {
			char key[256];
			snprintf(key, sizeof(key), "%.*s", (int)nslen, ns);
			ctrl_enqueue(&s->c, key);
			return;
		}
	}
}

static void sa_add(void *arg, const msgpack_object *sa)
{
}

static void sa_update(void *arg, const msgpack_object *old,
    const msgpack_object *sa)
{
}

static void sa_del(void *arg, const msgpack_object *sa)
{
	sa_event(arg, sa);
}

/* --- the reconcile --------------------------------------------------------------------- */

static bool ns_active(const msgpack_object *ns)
{
	return !ctrl_deleting(ns) &&
	    !kb_mp_streq(ns, "status.phase", "Terminating");
}

static int sac_sync(void *arg, const char *key)
{
	struct sac *s = arg;
	kb_body *nb = kb_informer_get(s->nss, NULL, key);
	if (nb == NULL)
		return 0;
	bool active = ns_active(kb_body_obj(nb));
	kb_body_unref(nb);
	if (!active)
		return 0;
	int rc = 0;
	for (const char *const *a = accounts(s); *a; a++) {
		kb_body *sb = kb_informer_get(s->sas, key, *a);
		if (sb) {
			kb_body_unref(sb);
			continue;
		}
		kb_body *b = kb_mp_body("{s:s, s:s, s:{s:s, s:s}}",
		    "apiVersion", "v1", "kind", "ServiceAccount", "metadata",
		    "name", *a, "namespace", key);
		if (b == NULL)
			return KB_ENOMEM;
		kb_msg *rep = NULL;
		int e = kb_api_create(s->c.ctx, &KB_GVR_SERVICEACCOUNTS, key, b,
		    &rep);
		if (e == 0) {
			kb_debug(s->c.ctx, "created serviceaccount",
			    "namespace=%s name=%s", key, *a);
		} else if (e != KB_EEXIST && e != KB_ENOTFOUND) {
			/* A namespace being deleted refuses new objects:
			 * Forbidden, and nothing to do. */
			const char *why = "";
			if (rep)
				kb_msg_err(rep, &why);
			if (e != KB_EFORBIDDEN) {
				kb_warn(s->c.ctx,
				    "cannot create serviceaccount",
				    "namespace=%s name=%s err=%s message=\"%s\"",
				    key, *a, kb_err_reason(e), why);
				rc = e;
			}
		}
		kb_msg_free(rep);
	}
	return rc;
}

/* --- lifecycle ------------------------------------------------------------------------ */

static void sac_free(struct sac *s)
{
	ctrl_fini(&s->c);
	kb_conf_opts_free(opts, &s->cfg);
	free(s);
}

static int sac_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	struct sac *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	if (kb_conf_opts(conf, opts, &s->cfg, kb_instance(ctx), err,
		sizeof(err))) {
		free(s);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	for (char **a = s->cfg.accounts; a && *a; a++) {
		if (**a == '\0' || strlen(*a) > 253 || strchr(*a, '/')) {
			int rc = kb_fail(ctx, KB_EINVAL,
			    "service_accounts in %s: `%s` is not a valid "
			    "ServiceAccount name",
			    kb_instance(ctx), *a);
			sac_free(s);
			return rc;
		}
	}
	static const struct kb_informer_handlers nsh = { ns_add, ns_update,
		ns_del };
	static const struct kb_informer_handlers sah = { sa_add, sa_update,
		sa_del };
	if (ctrl_init(&s->c, ctx, "serviceaccount", &s->cfg.ctl, sac_sync, s) ||
	    !(s->nss = ctrl_watch(&s->c, &KB_GVR_NAMESPACES, &nsh, s)) ||
	    !(s->sas = ctrl_watch(&s->c, &KB_GVR_SERVICEACCOUNTS, &sah, s))) {
		sac_free(s);
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	}
	*state = s;
	return 0;
}

static int sac_start(kb_ctx *ctx, void *state)
{
	return ctrl_start(&((struct sac *)state)->c);
}

static void sac_stop(kb_ctx *ctx, void *state)
{
	ctrl_stop(&((struct sac *)state)->c);
}

static void sac_fini(void *state)
{
	sac_free(state);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "ctrl-serviceaccount",
		.version = "0.1.0",
		.description =
		    "ServiceAccount controller: a default account per namespace",
		.kind = KB_KIND_CONTROLLER,
		.init = sac_init,
		.start = sac_start,
		.stop = sac_stop,
		.fini = sac_fini,
	};
	return &p;
}
