/* plugins/kubelet/dnsfiles.c — a pod's /etc/resolv.conf and /etc/hosts,
 * written into its pod dir once the pod IP is known and mounted read-only
 * into every container (prepare.c).
 *
 * resolv.conf follows dnsPolicy as the kubelet does: ClusterFirst (the
 * default) points at cluster_dns with the search path
 * `<ns>.svc.<domain> svc.<domain> <domain>` and `ndots:5` — or, with no
 * cluster_dns configured or on the host network, falls back to Default;
 * ClusterFirstWithHostNet is ClusterFirst on the host network too; Default
 * copies the node's resolv_conf; None takes only spec.dnsConfig. dnsConfig
 * (nameservers, searches, options) is merged into every policy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubelet.h"

#define MAX_NS 3
#define MAX_SEARCH 32
#define MAX_OPTS 32

struct resolv {
	char *ns[MAX_NS];
	size_t nns;
	char *search[MAX_SEARCH];
	size_t nsearch;
	char *opt[MAX_OPTS]; /* "name" or "name:value" */
	size_t nopt;
};

static void add(char **v, size_t *n, size_t max, const char *s, size_t len)
{
	for (size_t i = 0; i < *n; i++)
		if (strlen(v[i]) == len && !memcmp(v[i], s, len))
			return;
	if (*n < max && (v[*n] = strndup(s, len)) != NULL)
		(*n)++;
}

/* An option replaces one of the same name. */
static void add_opt(struct resolv *r, const char *s, size_t len)
{
	size_t nl = strcspn(s, ":");
	if (nl > len)
		nl = len;
	for (size_t i = 0; i < r->nopt; i++) {
		if (strcspn(r->opt[i], ":") == nl &&
		    !strncmp(r->opt[i], s, nl)) {
			char *d = strndup(s, len);
			if (d) {
				free(r->opt[i]);
				r->opt[i] = d;
			}
			return;
		}
	}
	add(r->opt, &r->nopt, MAX_OPTS, s, len);
}

static void words(const char *p,
    void (*fn)(struct resolv *, const char *, size_t), struct resolv *r)
{
	while (*p) {
		p += strspn(p, " \t");
		size_t n = strcspn(p, " \t\r\n");
		if (n == 0)
			break;
		fn(r, p, n);
		p += n;
	}
}

static void w_ns(struct resolv *r, const char *s, size_t n)
{
	add(r->ns, &r->nns, MAX_NS, s, n);
}
static void w_search(struct resolv *r, const char *s, size_t n)
{
	add(r->search, &r->nsearch, MAX_SEARCH, s, n);
}

static void read_host(struct resolv *r, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "nameserver", 10) &&
		    (line[10] == ' ' || line[10] == '\t'))
			words(line + 10, w_ns, r);
		else if (!strncmp(line, "search", 6) &&
		    (line[6] == ' ' || line[6] == '\t'))
			words(line + 6, w_search, r);
		else if (!strncmp(line, "options", 7) &&
		    (line[7] == ' ' || line[7] == '\t'))
			words(line + 7, add_opt, r);
	}
	fclose(f);
}

static void resolv_free(struct resolv *r)
{
	for (size_t i = 0; i < r->nns; i++)
		free(r->ns[i]);
	for (size_t i = 0; i < r->nsearch; i++)
		free(r->search[i]);
	for (size_t i = 0; i < r->nopt; i++)
		free(r->opt[i]);
}

static void each_str(const msgpack_object *a,
    void (*fn)(struct resolv *, const char *, size_t), struct resolv *r)
{
	for (uint32_t i = 0;
	     a && a->type == MSGPACK_OBJECT_ARRAY && i < a->via.array.size; i++)
		if (a->via.array.ptr[i].type == MSGPACK_OBJECT_STR)
			fn(r, a->via.array.ptr[i].via.str.ptr,
			    a->via.array.ptr[i].via.str.size);
}

static char *resolv_text(struct kubelet *kl, const struct kl_pod *p,
    const msgpack_object *pod)
{
	struct resolv r = { 0 };
	char policy[32] = "ClusterFirst";
	const char *s;
	size_t len;
	if (kb_mp_str(pod, "spec.dnsPolicy", &s, &len) && len < sizeof(policy))
		snprintf(policy, sizeof(policy), "%.*s", (int)len, s);
	bool host_net = false;
	kb_mp_bool(pod, "spec.hostNetwork", &host_net);
	bool cluster = kl->cfg.cluster_dns &&
	    ((!strcmp(policy, "ClusterFirst") && !host_net) ||
		!strcmp(policy, "ClusterFirstWithHostNet"));
	if (cluster) {
		const char *d = kl->cfg.cluster_domain;
		char *a = kl_strf("%s.svc.%s", p->ns, d);
		char *b = kl_strf("svc.%s", d);
		w_ns(&r, kl->cfg.cluster_dns, strlen(kl->cfg.cluster_dns));
		if (a)
			w_search(&r, a, strlen(a));
		if (b)
			w_search(&r, b, strlen(b));
		w_search(&r, d, strlen(d));
		add_opt(&r, "ndots:5", 7);
		free(a);
		free(b);
		/* The node's own search domains follow, as the kubelet does. */
		struct resolv h = { 0 };
		read_host(&h, kl->cfg.resolv_conf);
		for (size_t i = 0; i < h.nsearch; i++)
			w_search(&r, h.search[i], strlen(h.search[i]));
		resolv_free(&h);
	} else if (strcmp(policy, "None") != 0) {
		read_host(&r, kl->cfg.resolv_conf);
	}
	const msgpack_object *dc = kb_mp_get(pod, "spec.dnsConfig");
	each_str(kb_mp_get(dc, "nameservers"), w_ns, &r);
	each_str(kb_mp_get(dc, "searches"), w_search, &r);
	const msgpack_object *opts = kb_mp_get(dc, "options");
	for (uint32_t i = 0; opts && opts->type == MSGPACK_OBJECT_ARRAY &&
	     i < opts->via.array.size;
	     i++) {
		const char *n, *v;
		size_t nl, vl;
		if (!kb_mp_str(&opts->via.array.ptr[i], "name", &n, &nl))
			continue;
		char *o = kb_mp_str(&opts->via.array.ptr[i], "value", &v, &vl) ?
		    kl_strf("%.*s:%.*s", (int)nl, n, (int)vl, v) :
		    strndup(n, nl);
		if (o)
			add_opt(&r, o, strlen(o));
		free(o);
	}

	size_t cap = 256;
	for (size_t i = 0; i < r.nns; i++)
		cap += strlen(r.ns[i]) + 16;
	for (size_t i = 0; i < r.nsearch; i++)
		cap += strlen(r.search[i]) + 1;
	for (size_t i = 0; i < r.nopt; i++)
		cap += strlen(r.opt[i]) + 1;
	char *t = malloc(cap);
	size_t off = 0;
	if (t) {
		t[0] = '\0';
		if (r.nsearch) {
			off += (size_t)snprintf(t + off, cap - off, "search");
			for (size_t i = 0; i < r.nsearch; i++)
				off += (size_t)snprintf(t + off, cap - off,
				    " %s", r.search[i]);
			off += (size_t)snprintf(t + off, cap - off, "\n");
		}
		for (size_t i = 0; i < r.nns; i++)
			off += (size_t)snprintf(t + off, cap - off,
			    "nameserver %s\n", r.ns[i]);
		if (r.nopt) {
			off += (size_t)snprintf(t + off, cap - off, "options");
			for (size_t i = 0; i < r.nopt; i++)
				off += (size_t)snprintf(t + off, cap - off,
				    " %s", r.opt[i]);
			snprintf(t + off, cap - off, "\n");
		}
	}
	resolv_free(&r);
	return t;
}

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void bputs(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->cap ? b->cap * 2 : 1024) + n;
		char *np = realloc(b->p, cap);
		if (np == NULL) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void bstr(struct buf *b, const char *s)
{
	bputs(b, s, strlen(s));
}

static char *hosts_text(struct kubelet *kl, const struct kl_pod *p,
    const msgpack_object *pod)
{
	struct buf b = { 0 };
	bool host_net = false;
	kb_mp_bool(pod, "spec.hostNetwork", &host_net);
	if (host_net) {
		char *h = kl_slurp("/etc/hosts", NULL);
		bstr(&b, h ? h : "127.0.0.1\tlocalhost\n");
		free(h);
	} else {
		bstr(&b,
		    "# Kubernetes-managed hosts file.\n"
		    "127.0.0.1\tlocalhost\n"
		    "::1\tlocalhost ip6-localhost ip6-loopback\n"
		    "fe00::0\tip6-localnet\n"
		    "fe00::0\tip6-mcastprefix\n"
		    "fe00::1\tip6-allnodes\n"
		    "fe00::2\tip6-allrouters\n");
		char *host = kb_mp_strdup(pod, "spec.hostname");
		char *sub = kb_mp_strdup(pod, "spec.subdomain");
		const char *hn = host ? host : p->name;
		char *line = sub ?
		    kl_strf("%s\t%s.%s.%s.svc.%s\t%s\n", p->ip, hn, sub, p->ns,
			kl->cfg.cluster_domain, hn) :
		    kl_strf("%s\t%s\n", p->ip, hn);
		if (line && p->ip[0])
			bstr(&b, line);
		free(line);
		free(host);
		free(sub);
	}
	const msgpack_object *al = kb_mp_get(pod, "spec.hostAliases");
	for (uint32_t i = 0;
	     al && al->type == MSGPACK_OBJECT_ARRAY && i < al->via.array.size;
	     i++) {
		const msgpack_object *a = &al->via.array.ptr[i];
		const char *ip;
		size_t il;
		if (!kb_mp_str(a, "ip", &ip, &il))
			continue;
		if (i == 0)
			bstr(&b, "\n# Entries added by HostAliases.\n");
		bputs(&b, ip, il);
		const msgpack_object *hs = kb_mp_get(a, "hostnames");
		for (uint32_t j = 0; hs && hs->type == MSGPACK_OBJECT_ARRAY &&
		     j < hs->via.array.size;
		     j++) {
			if (hs->via.array.ptr[j].type != MSGPACK_OBJECT_STR)
				continue;
			bstr(&b, "\t");
			bputs(&b, hs->via.array.ptr[j].via.str.ptr,
			    hs->via.array.ptr[j].via.str.size);
		}
		bstr(&b, "\n");
	}
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

int kl_dns_files(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod, char *err, size_t errlen)
{
	char *dir = kl_pod_dir(kl, p->uid);
	char *rpath = dir ? kl_strf("%s/resolv.conf", dir) : NULL;
	char *hpath = dir ? kl_strf("%s/hosts", dir) : NULL;
	char *rt = resolv_text(kl, p, pod);
	char *ht = hosts_text(kl, p, pod);
	int rc = KB_ENOMEM;
	if (rpath && hpath && rt && ht) {
		rc = kl_write_file(rpath, rt, strlen(rt), 0644);
		if (rc == 0)
			rc = kl_write_file(hpath, ht, strlen(ht), 0644);
		if (rc)
			snprintf(err, errlen, "cannot write %s", rpath);
	}
	free(dir);
	free(rpath);
	free(hpath);
	free(rt);
	free(ht);
	return rc;
}
