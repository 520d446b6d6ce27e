/* sched-prefer-label — a third-party scheduling policy, built out of tree
 * against the installed Kubus SDK: nodes carrying a label (with a given
 * value, if one is set) score 100, the others 0. Named in a scheduler
 * profile with a weight, it draws pods to those nodes without excluding
 * the others.
 *
 *     plugins:
 *       score: {enabled: [{name: sched-prefer-label, weight: 10}]}
 *     pluginConfig:
 *       - name: sched-prefer-label
 *         args: {label: disktype, value: ssd}
 */
#include <stdlib.h>
#include <string.h>

#include <kubus/kubus.h>
#include <kubus/sched.h>

struct prefer {
	char *label;
	char *value; /* NULL: any value */
};

static const struct kb_opt opts[] = {
	KB_OPT_STR_REQ("label", struct prefer, label, "the label to prefer"),
	KB_OPT_STR("value", struct prefer, value, NULL,
	    "its value (any value when absent)"),
	KB_OPT_END,
};

static int init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	struct prefer *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	if (kb_conf_opts(conf, opts, p, kb_instance(ctx), err, sizeof(err))) {
		free(p);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	*state = p;
	return 0;
}

static void fini(void *state)
{
	kb_conf_opts_free(opts, state);
	free(state);
}

/* Called for each feasible node, possibly from several threads: it only
 * reads. */
static int score(void *state, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
    int64_t *out, struct kb_sched_status *st)
{
	(void)cy;
	(void)pod;
	(void)st;
	const struct prefer *p = state;
	const char *v = kb_sched_label(node->labels, node->nlabels, p->label);
	*out = v && (p->value == NULL || !strcmp(v, p->value)) ?
	    KB_SCHED_MAX_SCORE :
	    0;
	return KB_SCHED_SUCCESS;
}

static const struct kb_sched_policy_ops ops = {
	.size = sizeof(struct kb_sched_policy_ops),
	.score = score,
};

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "sched-prefer-label",
		.kind = KB_KIND_SCHED_POLICY,
		.version = "1.0.0",
		.description = "prefer nodes with a label",
		.init = init,
		.fini = fini,
		.ops = &ops,
	};
	return &p;
}
