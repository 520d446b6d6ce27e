/* plugins/proxy/record.c — proxy-record, a backend (kind proxy-backend)
 * that changes nothing on the machine and writes each state it is given
 * to a file instead: for tests of what the proxy decides (no root needed)
 * and for looking at it by hand.
 *
 *   backend: proxy-record
 *   backend_config: {file: /tmp/px-state.txt}
 *
 * The file is replaced on every sync (write + rename). First line:
 * `sync N full=0|1 changed=K1,K2 cidr=C node_ip=IP`, then one line per
 * service:
 *   KEY ip=CLUSTERIP affinity=0|1/SECONDS NAME/PROTO/PORT/NODEPORT eps=IP:PORT[L],… node=…|same
 * ("L": on this node; node=same when the NodePort uses the ClusterIP's
 * endpoints). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/kubus.h>
#include <kubus/proxy.h>

struct rec {
	kb_ctx *ctx;
	char *file;
	unsigned long n;
	int cleanups;
};

struct rcfg {
	char *file;
};

static const struct kb_opt opts[] = {
	KB_OPT_STR_REQ("file", struct rcfg, file,
	    "where each synced state is written"),
	KB_OPT_END,
};

static void eps_out(FILE *f, const struct kb_px_endpoint *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%s:%u%s", i ? "," : "", e[i].ip, e[i].port,
		    e[i].local ? "L" : "");
}

static int rec_sync(void *state, const struct kb_px_state *st)
{
	struct rec *r = state;
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", r->file);
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		return kb_fail(r->ctx, KB_ESYS, "cannot write %s", tmp);
	fprintf(f, "sync %lu full=%d changed=", ++r->n, st->full);
	for (size_t i = 0; i < st->nchanged; i++)
		fprintf(f, "%s%s", i ? "," : "", st->changed[i]);
	fprintf(f, " cidr=%s node_ip=%s\n", st->service_cidr,
	    st->node_ip ? st->node_ip : "");
	for (size_t i = 0; i < st->nsvcs; i++) {
		const struct kb_px_service *s = &st->svcs[i];
		fprintf(f, "%s ip=%s affinity=%d/%u", s->key, s->cluster_ip,
		    s->affinity, s->affinity_timeout_s);
		for (size_t k = 0; k < s->nports; k++) {
			const struct kb_px_port *p = &s->ports[k];
			fprintf(f, " %s/%d/%u/%u eps=", p->name, p->proto,
			    p->port, p->node_port);
			eps_out(f, p->eps, p->neps);
			fprintf(f, " node=");
			if (p->node_eps == p->eps && p->nnode_eps == p->neps)
				fprintf(f, "same");
			else
				eps_out(f, p->node_eps, p->nnode_eps);
		}
		fprintf(f, "\n");
	}
	if (fclose(f) != 0 || rename(tmp, r->file) != 0)
		return kb_fail(r->ctx, KB_ESYS, "cannot write %s", r->file);
	return 0;
}

static int rec_cleanup(void *state)
{
	struct rec *r = state;
	r->cleanups++;
	return 0;
}

static const struct kb_proxy_ops rec_ops = {
	.size = sizeof(struct kb_proxy_ops),
	.sync = rec_sync,
	.cleanup = rec_cleanup,
};

static int rec_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	struct rcfg c = { 0 };
	if (kb_conf_opts(conf, opts, &c, "proxy-record", err, sizeof(err)))
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	struct rec *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		kb_conf_opts_free(opts, &c);
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	}
	r->ctx = ctx;
	r->file = c.file;
	*state = r;
	return 0;
}

static void rec_fini(void *state)
{
	struct rec *r = state;
	if (r) {
		free(r->file);
		free(r);
	}
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "proxy-record",
		.version = "0.1.0",
		.description =
		    "service proxy backend that writes the desired state to a file (tests, debugging)",
		.kind = KB_KIND_PROXY_BACKEND,
		.init = rec_init,
		.fini = rec_fini,
		.ops = &rec_ops,
	};
	return &p;
}
