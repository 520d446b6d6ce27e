/* plugins/proxy-iptables/ipt.c — the iptables backend (kind
 * proxy-backend), as kube-proxy's iptables mode: `iptables-restore
 * --noflush` with chains of its own in the nat table
 *   KUBUS-SERVICES   ClusterIP:port -> KUBUS-SVC-*, local addresses ->
 *                    KUBUS-NODEPORTS
 *   KUBUS-SVC-<hash> statistic random over KUBUS-SEP-* (recent match for
 *                    ClientIP affinity); KUBUS-XLB-<hash> for NodePorts
 *                    with externalTrafficPolicy Local
 *   KUBUS-SEP-<hash> hairpin mark, DNAT to the endpoint
 *   KUBUS-OUTPUT / KUBUS-POSTROUTING / KUBUS-MARK-MASQ  masquerade of
 *                    locally generated and hairpin traffic only
 * and KUBUS-FIREWALL in the filter table (REJECT for ports without
 * endpoints and for unallocated addresses of the service CIDR), jumped to
 * from the built-in chains. A full sync rewrites all of it in one
 * restore; an incremental one only the chains of the changed services and
 * the three that list every service (--noflush leaves the rest alone).
 * Config `mode`: auto (`iptables`), legacy (`iptables-legacy`) or nft
 * (`iptables-nft`); cleanup covers both variants. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/kubus.h>
#include <kubus/proxy.h>
#include <kubus/strmap.h>

#include "../proxy/pxbuf.h"
#include "../proxy/pxrun.h"

/* The iptables variants: commands are "<prefix>", "<prefix>-save" and
 * "<prefix>-restore". */
static const char *const variants[] = { "iptables", "iptables-legacy",
	"iptables-nft" };

struct iptbe {
	kb_ctx *ctx;
	const char *cmd;         /* one of variants[] */
	struct kb_strmap chains; /* nat chains of the last sync -> NULL */
	bool synced;             /* since init: stale state is cleaned */
};

static int restore_with(struct iptbe *b, const char *cmd, const struct pxbuf *t)
{
	char exe[40];
	snprintf(exe, sizeof(exe), "%s-restore", cmd);
	char *argv[] = { exe, "-w", "5", "--noflush", NULL };
	char err[512] = "";
	if (t->oom)
		return KB_ENOMEM;
	int rc = px_run_io(argv, t->p, t->n, NULL, err, sizeof(err));
	if (rc != 0) {
		kb_error(b->ctx, "iptables-restore failed",
		    "cmd=%s rc=%d err=\"%s\"", exe, rc, err);
		return KB_ESYS;
	}
	return 0;
}

static int restore(struct iptbe *b, const struct pxbuf *t)
{
	return restore_with(b, b->cmd, t);
}

/* the jumps from built-in chains: table, chain, target */
static const char *const jumps[][3] = {
	{ "nat", "PREROUTING", "KUBUS-SERVICES" },
	{ "nat", "OUTPUT", "KUBUS-OUTPUT" },
	{ "nat", "POSTROUTING", "KUBUS-POSTROUTING" },
	{ "filter", "INPUT", "KUBUS-FIREWALL" },
	{ "filter", "FORWARD", "KUBUS-FIREWALL" },
	{ "filter", "OUTPUT", "KUBUS-FIREWALL" },
};

static int ensure_jumps(struct iptbe *b)
{
	for (size_t i = 0; i < sizeof(jumps) / sizeof(*jumps); i++) {
		char *t = (char *)jumps[i][0], *c = (char *)jumps[i][1],
		     *j = (char *)jumps[i][2];
		char *chk[] = { (char *)b->cmd, "-w", "5", "-t", t, "-C", c,
			"-j", j, NULL };
		char *ins[] = { (char *)b->cmd, "-w", "5", "-t", t, "-I", c,
			"1", "-j", j, NULL };
		char err[512];
		if (px_run_io(chk, NULL, 0, NULL, err, sizeof(err)) == 0)
			continue;
		if (px_run_io(ins, NULL, 0, NULL, err, sizeof(err)) != 0) {
			kb_error(b->ctx, "cannot add an iptables jump",
			    "chain=%s/%s err=\"%s\"", t, c, err);
			return KB_ESYS;
		}
	}
	return 0;
}

/* A chain name from a hash of its parts, as kube-proxy does (iptables
 * chain names are at most 28 characters). */
static void chain_name(char *out, size_t len, const char *pfx, const char *a,
    unsigned x, const char *c)
{
	uint64_t h = 1469598103934665603ULL;
	const char *parts[] = { a, c };
	for (int k = 0; k < 2; k++) {
		for (const char *p = parts[k]; p && *p; p++) {
			h ^= (unsigned char)*p;
			h *= 1099511628211ULL;
		}
		h ^= 0xff;
		h *= 1099511628211ULL;
	}
	h ^= x;
	h *= 1099511628211ULL;
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	char s[17];
	for (int i = 0; i < 16; i++) {
		s[i] = al[h & 31];
		h = (h >> 5) | (h << 59);
	}
	s[16] = '\0';
	snprintf(out, len, "%s%s", pfx, s);
}

static const char *proto_name(int p)
{
	return p == KB_PX_UDP ? "udp" : p == KB_PX_SCTP ? "sctp" : "tcp";
}

struct text {
	struct pxbuf decl, rules, fw_rej, fw_ok;
	struct kb_strmap *now;
};

static void declare(struct text *t, const char *chain)
{
	if (kb_strmap_get(t->now, chain) == NULL) {
		kb_strmap_put(t->now, chain, (void *)1, NULL);
		pxbuf_add(&t->decl, ":%s - [0:0]\n", chain);
	}
}

/* KUBUS-SVC (or -XLB) over eps; returns its name in `svc`. */
static void lb(struct text *t, const struct kb_px_service *s,
    const struct kb_px_port *p, const struct kb_px_endpoint *eps, size_t n,
    const char *pfx, char *svc, size_t svclen)
{
	char tag[64];
	snprintf(tag, sizeof(tag), "%s/%u", proto_name(p->proto), p->port);
	chain_name(svc, svclen, pfx, s->key, p->port, tag);
	declare(t, svc);
	const char *pr = proto_name(p->proto);
	char(*seps)[32] = calloc(n ? n : 1, sizeof(*seps));
	if (seps == NULL) {
		t->rules.oom = true;
		return;
	}
	for (size_t j = 0; j < n; j++) {
		char epk[128];
		snprintf(epk, sizeof(epk), "%s:%u/%s", eps[j].ip, eps[j].port,
		    tag);
		chain_name(seps[j], sizeof(seps[j]), "KUBUS-SEP-", s->key,
		    p->port, epk);
		declare(t, seps[j]);
		pxbuf_add(&t->rules, "-A %s -s %s/32 -j KUBUS-MARK-MASQ\n",
		    seps[j], eps[j].ip);
		if (s->affinity)
			pxbuf_add(&t->rules,
			    "-A %s -p %s -m recent --name %s --set --rsource -j DNAT --to-destination %s:%u\n",
			    seps[j], pr, seps[j], eps[j].ip, eps[j].port);
		else
			pxbuf_add(&t->rules,
			    "-A %s -p %s -j DNAT --to-destination %s:%u\n",
			    seps[j], pr, eps[j].ip, eps[j].port);
	}
	for (size_t j = 0; s->affinity && j < n; j++)
		pxbuf_add(&t->rules,
		    "-A %s -m recent --name %s --rcheck --seconds %u --reap --rsource -j %s\n",
		    svc, seps[j], s->affinity_timeout_s, seps[j]);
	for (size_t j = 0; j < n; j++) {
		if (j + 1 < n)
			pxbuf_add(&t->rules,
			    "-A %s -m statistic --mode random --probability %.10f -j %s\n",
			    svc, 1.0 / (double)(n - j), seps[j]);
		else
			pxbuf_add(&t->rules, "-A %s -j %s\n", svc, seps[j]);
	}
	free(seps);
}

static void free_nothing(void *v)
{
	(void)v;
}

struct stale {
	struct kb_strmap *now;
	struct pxbuf *decl, *del;
};

static void find_stale(void *arg, const char *key, void *val)
{
	struct stale *s = arg;
	(void)val;
	if (kb_strmap_get(s->now, key) == NULL) {
		pxbuf_add(s->decl, ":%s - [0:0]\n", key);
		pxbuf_add(s->del, "-X %s\n", key);
	}
}

static int ipt_cleanup(void *state);

static int ipt_sync(void *state, const struct kb_px_state *st)
{
	struct iptbe *b = state;
	int rc;
	if (!b->synced && (rc = ipt_cleanup(b)) != 0)
		return rc;
	/* A partial sync (kube-proxy's trick): with --noflush, a chain not
	 * named in the restore stays as it is, so only the chains of changed
	 * services are declared (flushed) and rewritten, with the two that
	 * list every service (KUBUS-SERVICES, KUBUS-NODEPORTS) and the
	 * firewall; the chains of the others are computed (for their names)
	 * into a scratch text that is thrown away. */
	bool part = !st->full && b->synced;
	struct kb_strmap chg = { 0 };
	bool oom = false;
	for (size_t i = 0; part && i < st->nchanged; i++)
		if (kb_strmap_put(&chg, st->changed[i], (void *)1, NULL))
			oom = true;
	struct kb_strmap now = { 0 };
	struct text t = { .now = &now };
	struct pxbuf scratch_decl = { 0 }, scratch_rules = { 0 };
	struct pxbuf nprules = { 0 };
	declare(&t, "KUBUS-SERVICES");
	declare(&t, "KUBUS-NODEPORTS");
	declare(&t, "KUBUS-OUTPUT");
	declare(&t, "KUBUS-POSTROUTING");
	declare(&t, "KUBUS-MARK-MASQ");
	pxbuf_add(&t.rules,
	    "-A KUBUS-MARK-MASQ -j MARK --or-mark 0x4000\n"
	    "-A KUBUS-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n"
	    "-A KUBUS-POSTROUTING -j MARK --xor-mark 0x4000\n"
	    "-A KUBUS-POSTROUTING -j MASQUERADE\n"
	    /* locally generated: marked, and unmarked again when no service
	     * DNAT'd it (a DNAT ends the table's traversal) */
	    "-A KUBUS-OUTPUT -j MARK --or-mark 0x4000\n"
	    "-A KUBUS-OUTPUT -j KUBUS-SERVICES\n"
	    "-A KUBUS-OUTPUT -j MARK --and-mark 0xffffbfff\n");
	if (part) {
		scratch_decl = t.decl;
		scratch_rules = t.rules;
		t.decl = (struct pxbuf){ 0 };
		t.rules = (struct pxbuf){ 0 };
		pxbuf_add(&t.decl,
		    ":KUBUS-SERVICES - [0:0]\n"
		    ":KUBUS-NODEPORTS - [0:0]\n");
	}
	pxbuf_add(&nprules,
	    "-A KUBUS-NODEPORTS -d 127.0.0.0/8 -j RETURN\n"
	    "-A KUBUS-NODEPORTS -d %s -j RETURN\n",
	    st->service_cidr);
	struct pxbuf svcrules = { 0 };
	for (size_t i = 0; i < st->nsvcs; i++) {
		const struct kb_px_service *s = &st->svcs[i];
		bool emit = !part || kb_strmap_get(&chg, s->key) != NULL;
		struct pxbuf keep_decl = t.decl, keep_rules = t.rules;
		if (!emit) {
			pxbuf_reset(&scratch_decl);
			pxbuf_reset(&scratch_rules);
			t.decl = scratch_decl;
			t.rules = scratch_rules;
		}
		pxbuf_add(&t.fw_ok, "-A KUBUS-FIREWALL -d %s/32 -j RETURN\n",
		    s->cluster_ip);
		for (size_t k = 0; k < s->nports; k++) {
			const struct kb_px_port *p = &s->ports[k];
			const char *pr = proto_name(p->proto);
			char svc[40], xlb[40];
			if (p->neps) {
				lb(&t, s, p, p->eps, p->neps, "KUBUS-SVC-", svc,
				    sizeof(svc));
				pxbuf_add(&svcrules,
				    "-A KUBUS-SERVICES -d %s/32 -p %s -m %s --dport %u -j %s\n",
				    s->cluster_ip, pr, pr, p->port, svc);
			} else {
				pxbuf_add(&t.fw_rej,
				    "-A KUBUS-FIREWALL -d %s/32 -p %s -m %s --dport %u -j REJECT\n",
				    s->cluster_ip, pr, pr, p->port);
			}
			if (!p->node_port)
				continue;
			if (p->nnode_eps == 0) {
				pxbuf_add(&t.fw_rej,
				    "-A KUBUS-FIREWALL -m addrtype --dst-type LOCAL -p %s -m %s --dport %u -j REJECT\n",
				    pr, pr, p->node_port);
				continue;
			}
			if (p->node_eps != p->eps || p->nnode_eps != p->neps)
				lb(&t, s, p, p->node_eps, p->nnode_eps,
				    "KUBUS-XLB-", xlb, sizeof(xlb));
			else
				snprintf(xlb, sizeof(xlb), "%s", svc);
			pxbuf_add(&nprules,
			    "-A KUBUS-NODEPORTS -p %s -m %s --dport %u -j %s\n",
			    pr, pr, p->node_port, xlb);
		}
		if (!emit) {
			if (t.decl.oom || t.rules.oom)
				oom = true;
			scratch_decl = t.decl;
			scratch_rules = t.rules;
			t.decl = keep_decl;
			t.rules = keep_rules;
		}
	}
	pxbuf_add(&svcrules,
	    "-A KUBUS-SERVICES -m addrtype --dst-type LOCAL -j KUBUS-NODEPORTS\n");
	/* chains of the last sync that are gone now */
	struct pxbuf del = { 0 };
	struct stale sc = { &now, &t.decl, &del };
	kb_strmap_each(&b->chains, find_stale, &sc);

	struct pxbuf all = { 0 };
	pxbuf_add(&all, "*nat\n");
	pxbuf_addn(&all, t.decl.p ? t.decl.p : "", t.decl.n);
	pxbuf_addn(&all, t.rules.p ? t.rules.p : "", t.rules.n);
	pxbuf_addn(&all, svcrules.p ? svcrules.p : "", svcrules.n);
	pxbuf_addn(&all, nprules.p ? nprules.p : "", nprules.n);
	pxbuf_addn(&all, del.p ? del.p : "", del.n);
	pxbuf_add(&all, "COMMIT\n*filter\n:KUBUS-FIREWALL - [0:0]\n");
	pxbuf_addn(&all, t.fw_rej.p ? t.fw_rej.p : "", t.fw_rej.n);
	pxbuf_addn(&all, t.fw_ok.p ? t.fw_ok.p : "", t.fw_ok.n);
	pxbuf_add(&all, "-A KUBUS-FIREWALL -d %s -j REJECT\nCOMMIT\n",
	    st->service_cidr);
	if (t.decl.oom || t.rules.oom || t.fw_rej.oom || t.fw_ok.oom ||
	    svcrules.oom || del.oom || nprules.oom || oom)
		all.oom = true;
	rc = restore(b, &all);
	/* the jumps are checked on full syncs (each check is a process
	 * and, with iptables-nft, a read of the whole table) */
	if (rc == 0 && !part)
		rc = ensure_jumps(b);
	if (rc == 0) {
		kb_strmap_clear(&b->chains, free_nothing);
		b->chains = now;
		b->synced = true;
	} else {
		kb_strmap_clear(&now, free_nothing);
		b->synced = false; /* clean up first next time */
	}
	pxbuf_free(&all);
	pxbuf_free(&del);
	pxbuf_free(&svcrules);
	pxbuf_free(&nprules);
	pxbuf_free(&scratch_decl);
	pxbuf_free(&scratch_rules);
	kb_strmap_clear(&chg, free_nothing);
	pxbuf_free(&t.decl);
	pxbuf_free(&t.rules);
	pxbuf_free(&t.fw_rej);
	pxbuf_free(&t.fw_ok);
	return rc;
}

/* Every KUBUS-* chain of `table` in iptables-save's output, declared
 * (which flushes it) and then deleted, into t. */
static void remove_chains(const char *save, const char *table, struct pxbuf *t)
{
	struct pxbuf del = { 0 };
	pxbuf_add(t, "*%s\n", table);
	const char *p = save;
	bool in = false;
	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (n > 1 && p[0] == '*')
			in = n - 1 == strlen(table) &&
			    !memcmp(p + 1, table, n - 1);
		else if (in && n > 7 && !memcmp(p, ":KUBUS-", 7)) {
			size_t cn = strcspn(p + 1, " \n");
			pxbuf_add(t, ":%.*s - [0:0]\n", (int)cn, p + 1);
			pxbuf_add(&del, "-X %.*s\n", (int)cn, p + 1);
		}
		p = nl ? nl + 1 : NULL;
	}
	pxbuf_addn(t, del.p ? del.p : "", del.n);
	pxbuf_add(t, "COMMIT\n");
	if (del.oom)
		t->oom = true;
	pxbuf_free(&del);
}

/* Remove our jumps and chains from one variant's tables. */
static int cleanup_variant(struct iptbe *b, const char *cmd, bool mine)
{
	char err[512];
	char *save = NULL;
	char exe[40];
	snprintf(exe, sizeof(exe), "%s-save", cmd);
	char *argv[] = { exe, NULL };
	if (px_run_io(argv, NULL, 0, &save, err, sizeof(err)) != 0) {
		free(save);
		/* no such iptables at all: then there is nothing of ours
		 * either */
		if (mine)
			kb_warn(b->ctx, "iptables-save failed",
			    "cmd=%s err=\"%s\"", exe, err);
		return 0;
	}
	if (save == NULL || !strstr(save, "KUBUS-")) {
		free(save);
		return 0;
	}
	/* the jumps first: a chain still referenced cannot go */
	for (size_t i = 0; i < sizeof(jumps) / sizeof(*jumps); i++) {
		char *del[] = { (char *)cmd, "-w", "5", "-t",
			(char *)jumps[i][0], "-D", (char *)jumps[i][1], "-j",
			(char *)jumps[i][2], NULL };
		for (int k = 0; k < 16; k++)
			if (px_run_io(del, NULL, 0, NULL, err, sizeof(err)) !=
			    0)
				break;
	}
	int rc = 0;
	if (strstr(save, ":KUBUS-")) {
		struct pxbuf t = { 0 };
		remove_chains(save, "nat", &t);
		remove_chains(save, "filter", &t);
		rc = restore_with(b, cmd, &t);
		pxbuf_free(&t);
	}
	free(save);
	return rc;
}

static int ipt_cleanup(void *state)
{
	struct iptbe *b = state;
	/* ours, then the other variant's (a run with another `mode`, or
	 * iptables switched between legacy and nft since) */
	int rc = cleanup_variant(b, b->cmd, true);
	if (strcmp(b->cmd, "iptables-legacy") != 0) {
		int r = cleanup_variant(b, "iptables-legacy", false);
		if (rc == 0)
			rc = r;
	}
	if (strcmp(b->cmd, "iptables-nft") != 0) {
		int r = cleanup_variant(b, "iptables-nft", false);
		if (rc == 0)
			rc = r;
	}
	kb_strmap_clear(&b->chains, free_nothing);
	b->synced = false;
	return rc;
}

static const struct kb_proxy_ops ipt_ops = {
	.size = sizeof(struct kb_proxy_ops),
	.sync = ipt_sync,
	.cleanup = ipt_cleanup,
};

struct iptcfg {
	char *mode;
};

static int iptbe_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	static const struct kb_opt opts[] = {
		KB_OPT_STR("mode", struct iptcfg, mode, "auto",
		    "auto (the system's iptables), legacy or nft"),
		KB_OPT_END,
	};
	char err[512];
	struct iptcfg cfg = { 0 };
	if (kb_conf_opts(conf, opts, &cfg, "proxy-iptables", err,
		sizeof(err)) != 0)
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	const char *cmd = NULL;
	if (!strcmp(cfg.mode, "auto"))
		cmd = variants[0];
	else if (!strcmp(cfg.mode, "legacy"))
		cmd = variants[1];
	else if (!strcmp(cfg.mode, "nft"))
		cmd = variants[2];
	if (cmd == NULL) {
		int rc = kb_fail(ctx, KB_EINVAL,
		    "proxy-iptables: mode `%s`: want auto, legacy or nft",
		    cfg.mode);
		kb_conf_opts_free(opts, &cfg);
		return rc;
	}
	kb_conf_opts_free(opts, &cfg);
	struct iptbe *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	b->ctx = ctx;
	b->cmd = cmd;
	*state = b;
	return 0;
}

static void iptbe_fini(void *state)
{
	struct iptbe *b = state;
	if (b == NULL)
		return;
	kb_strmap_clear(&b->chains, free_nothing);
	free(b);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "proxy-iptables",
		.version = "0.1.0",
		.description =
		    "service proxy backend: iptables-restore with KUBUS-* chains, as kube-proxy",
		.kind = KB_KIND_PROXY_BACKEND,
		.init = iptbe_init,
		.fini = iptbe_fini,
		.ops = &ipt_ops,
	};
	return &p;
}
