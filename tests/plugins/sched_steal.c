/* tests/plugins/sched_steal.c — a sched-policy for the bind-conflict test:
 * its PreBind binds pods labelled steal=yes to another node (args {to})
 * itself, so that the scheduler's own binding then meets a Conflict. */
#include <stdlib.h>
#include <string.h>

#include <kubus/kubus.h>
#include <kubus/sched.h>

struct steal {
	kb_ctx *ctx;
	char *to;
};

static const struct kb_opt opts[] = {
	KB_OPT_STR_REQ("to", struct steal, to, "where stolen pods go"),
	KB_OPT_END,
};

static int init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	struct steal *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return KB_ENOMEM;
	if (kb_conf_opts(conf, opts, s, kb_instance(ctx), err, sizeof(err))) {
		free(s);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	s->ctx = ctx;
	*state = s;
	return 0;
}

static void fini(void *state)
{
	kb_conf_opts_free(opts, state);
	free(state);
}

static int pre_bind(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const char *node,
    struct kb_sched_status *st)
{
	struct steal *s = state;
	const char *v = kb_sched_label(pod->labels, pod->nlabels, "steal");
	if (v == NULL || strcmp(v, "yes"))
		return KB_SCHED_SUCCESS;
	kb_body *b = kb_mp_body("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, "
				"s:{s:s, s:s}, s:{s:s, s:s}}}",
	    "group", "", "version", "v1", "resource", "pods", "namespace",
	    pod->ns, "name", pod->name, "subresource", "binding", "object",
	    "apiVersion", "v1", "kind", "Binding", "metadata", "name",
	    pod->name, "namespace", pod->ns, "target", "kind", "Node", "name",
	    s->to);
	kb_msg *rep = NULL;
	int rc = kb_call(s->ctx, "api", "create", b, 0, &rep);
	kb_msg_free(rep);
	if (rc)
		return kb_sched_reject(st, KB_SCHED_ERROR, "steal: %s",
		    kb_strerror(rc));
	return KB_SCHED_SUCCESS;
}

static const struct kb_sched_policy_ops ops = {
	.size = sizeof(struct kb_sched_policy_ops),
	.pre_bind = pre_bind,
};

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "sched_steal",
		.kind = KB_KIND_SCHED_POLICY,
		.init = init,
		.fini = fini,
		.ops = &ops,
	};
	return &p;
}
