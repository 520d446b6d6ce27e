/* plugins/dns/zone.c — the cluster domain's records, from Services and
 * EndpointSlices, as Kubernetes' DNS specification lays them out:
 *
 *   SVC.NS.svc.DOMAIN                 A    the ClusterIP; for a headless
 *                                          service its ready endpoints
 *   _PORT._PROTO.SVC.NS.svc.DOMAIN    SRV  0 100 port SVC.NS.svc.DOMAIN
 *                                          (headless: one per endpoint,
 *                                          target HOST.SVC.NS.svc.DOMAIN)
 *   HOST.SVC.NS.svc.DOMAIN            A    a headless endpoint (HOST its
 *                                          hostname, else its dashed IP)
 *   D.C.B.A.in-addr.arpa              PTR  SVC.NS.svc.DOMAIN (or HOST…)
 *
 * Each service entry remembers the names it put in the map, so that a
 * change recomputes that service's names only: the cost of an update does
 * not grow with the number of services.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/mp.h>

#include "dns.h"

struct dns_ep {
	uint32_t ip;
	char *hostname; /* may be NULL */
	bool ready;
};

struct dns_slice {
	char *key, *svc; /* the slice's "ns/name", its service's */
	struct dns_ep *eps;
	size_t neps;
};

struct dns_port {
	char *name, *proto; /* proto lower case: "tcp", "udp", "sctp" */
	uint16_t port;
};

struct dns_svc {
	char *key, *ns, *name;
	bool present; /* the Service exists (slices may come first) */
	bool headless, publish_not_ready;
	uint32_t cluster_ip;
	struct dns_port *ports;
	size_t nports;
	struct dns_slice **slices;
	size_t nslices;
	char **owned; /* names this service created in z->names */
	size_t nowned;
};

/* An entry of z->names: the records and which service owns the name. */
struct dns_owned {
	struct dns_name n;
	char *owner;
};

static void name_free(void *v)
{
	struct dns_owned *o = v;
	if (o == NULL)
		return;
	free(o->n.a);
	for (size_t i = 0; i < o->n.nsrv; i++)
		free(o->n.srv[i].target);
	free(o->n.srv);
	free(o->n.ptr);
	free(o->owner);
	free(o);
}

static void lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* The entry for name, made (owned by svc) when missing; NULL when another
 * service owns it or memory ran out. */
static struct dns_owned *claim(struct dns_zone *z, struct dns_svc *s,
    const char *name)
{
	char key[DNS_NAME_MAX];
	if (snprintf(key, sizeof(key), "%s", name) >= (int)sizeof(key))
		return NULL;
	lower(key);
	struct dns_owned *o = kb_strmap_get(&z->names, key);
	if (o != NULL)
		return strcmp(o->owner, s->key) ? NULL : o;
	char **v = realloc(s->owned, (s->nowned + 1) * sizeof(*v));
	if (v == NULL)
		return NULL;
	s->owned = v;
	v[s->nowned] = NULL;
	o = calloc(1, sizeof(*o));
	if (o == NULL || !(o->owner = strdup(s->key)) ||
	    !(v[s->nowned] = strdup(key)) ||
	    kb_strmap_put(&z->names, key, o, NULL)) {
		free(v[s->nowned]);
		name_free(o);
		return NULL;
	}
	s->nowned++;
	return o;
}

static void add_a(struct dns_zone *z, struct dns_svc *s, const char *name,
    uint32_t ip)
{
	struct dns_owned *o = claim(z, s, name);
	if (o == NULL)
		return;
	for (size_t i = 0; i < o->n.na; i++)
		if (o->n.a[i] == ip)
			return;
	uint32_t *a = realloc(o->n.a, (o->n.na + 1) * sizeof(*a));
	if (a == NULL)
		return;
	a[o->n.na++] = ip;
	o->n.a = a;
}

static void add_srv(struct dns_zone *z, struct dns_svc *s, const char *name,
    uint16_t port, const char *target)
{
	struct dns_owned *o = claim(z, s, name);
	if (o == NULL)
		return;
	struct dns_srv *v = realloc(o->n.srv, (o->n.nsrv + 1) * sizeof(*v));
	if (v == NULL)
		return;
	o->n.srv = v;
	if ((v[o->n.nsrv].target = strdup(target)) == NULL)
		return;
	lower(v[o->n.nsrv].target);
	v[o->n.nsrv++].port = port;
}

static void add_ptr(struct dns_zone *z, struct dns_svc *s, uint32_t ip,
    const char *target)
{
	const uint8_t *b = (const uint8_t *)&ip;
	char name[64];
	snprintf(name, sizeof(name), "%u.%u.%u.%u.in-addr.arpa", b[3], b[2],
	    b[1], b[0]);
	struct dns_owned *o = claim(z, s, name);
	if (o == NULL || o->n.ptr != NULL)
		return;
	if ((o->n.ptr = strdup(target)) != NULL)
		lower(o->n.ptr);
}

/* Take every name of s out of the map. */
static void unpublish(struct dns_zone *z, struct dns_svc *s)
{
	for (size_t i = 0; i < s->nowned; i++) {
		struct dns_owned *o = kb_strmap_get(&z->names, s->owned[i]);
		if (o != NULL && !strcmp(o->owner, s->key))
			name_free(kb_strmap_del(&z->names, s->owned[i]));
		free(s->owned[i]);
	}
	free(s->owned);
	s->owned = NULL;
	s->nowned = 0;
}

static void dashed(uint32_t ip, char *buf, size_t len)
{
	const uint8_t *b = (const uint8_t *)&ip;
	snprintf(buf, len, "%u-%u-%u-%u", b[0], b[1], b[2], b[3]);
}

/* Put the names of s into the map. */
static void publish(struct dns_zone *z, struct dns_svc *s)
{
	char fq[DNS_NAME_MAX], nm[DNS_NAME_MAX], host[DNS_NAME_MAX];
	if (!s->present)
		return;
	if (snprintf(fq, sizeof(fq), "%s.%s.svc.%s", s->name, s->ns,
		z->domain) >= (int)sizeof(fq))
		return;
	if (!s->headless) {
		if (s->cluster_ip == 0)
			return;
		add_a(z, s, fq, s->cluster_ip);
		add_ptr(z, s, s->cluster_ip, fq);
		for (size_t i = 0; i < s->nports; i++) {
			const struct dns_port *p = &s->ports[i];
			if (p->name[0] == '\0')
				continue;
			if (snprintf(nm, sizeof(nm), "_%s._%s.%s", p->name,
				p->proto, fq) < (int)sizeof(nm))
				add_srv(z, s, nm, p->port, fq);
		}
		return;
	}
	for (size_t k = 0; k < s->nslices; k++) {
		const struct dns_slice *sl = s->slices[k];
		for (size_t e = 0; e < sl->neps; e++) {
			const struct dns_ep *ep = &sl->eps[e];
			if (!ep->ready && !s->publish_not_ready)
				continue;
			add_a(z, s, fq, ep->ip);
			if (ep->hostname != NULL)
				snprintf(host, sizeof(host), "%s", ep->hostname);
			else
				dashed(ep->ip, host, sizeof(host));
			if (snprintf(nm, sizeof(nm), "%s.%s", host, fq) >=
			    (int)sizeof(nm))
				continue;
			add_a(z, s, nm, ep->ip);
			if (ep->hostname != NULL)
				add_ptr(z, s, ep->ip, nm);
			for (size_t i = 0; i < s->nports; i++) {
				const struct dns_port *p = &s->ports[i];
				char srv[DNS_NAME_MAX];
				if (p->name[0] != '\0' &&
				    snprintf(srv, sizeof(srv), "_%s._%s.%s",
					p->name, p->proto, fq) < (int)sizeof(srv))
					add_srv(z, s, srv, p->port, nm);
			}
		}
	}
}

static void ports_free(struct dns_svc *s)
{
	for (size_t i = 0; i < s->nports; i++) {
		free(s->ports[i].name);
		free(s->ports[i].proto);
	}
	free(s->ports);
	s->ports = NULL;
	s->nports = 0;
}

static void svc_free(void *v)
{
	struct dns_svc *s = v;
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nowned; i++)
		free(s->owned[i]);
	free(s->owned);
	ports_free(s);
	free(s->slices);
	free(s->key);
	free(s->ns);
	free(s->name);
	free(s);
}

static void slice_free(void *v)
{
	struct dns_slice *sl = v;
	if (sl == NULL)
		return;
	for (size_t i = 0; i < sl->neps; i++)
		free(sl->eps[i].hostname);
	free(sl->eps);
	free(sl->key);
	free(sl->svc);
	free(sl);
}

int dns_zone_init(struct dns_zone *z, const char *domain, uint32_t ttl)
{
	memset(z, 0, sizeof(*z));
	while (*domain == '.')
		domain++;
	if ((z->domain = strdup(domain)) == NULL)
		return -1;
	size_t n = strlen(z->domain);
	while (n > 0 && z->domain[n - 1] == '.')
		z->domain[--n] = '\0';
	lower(z->domain);
	z->ttl = ttl;
	pthread_rwlock_init(&z->lock, NULL);
	return 0;
}

void dns_zone_fini(struct dns_zone *z)
{
	kb_strmap_clear(&z->names, name_free);
	kb_strmap_clear(&z->svcs, svc_free);
	kb_strmap_clear(&z->slices, slice_free);
	kb_strmap_clear(&z->nss, NULL);
	free(z->names.b);
	free(z->svcs.b);
	free(z->slices.b);
	free(z->nss.b);
	pthread_rwlock_destroy(&z->lock);
	free(z->domain);
}

/* The entry for key, made when missing (write lock held). */
static struct dns_svc *svc_get(struct dns_zone *z, const char *ns,
    const char *name)
{
	char key[DNS_NAME_MAX];
	if (snprintf(key, sizeof(key), "%s/%s", ns, name) >= (int)sizeof(key))
		return NULL;
	struct dns_svc *s = kb_strmap_get(&z->svcs, key);
	if (s != NULL)
		return s;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if (!(s->key = strdup(key)) || !(s->ns = strdup(ns)) ||
	    !(s->name = strdup(name)) || kb_strmap_put(&z->svcs, key, s, NULL)) {
		svc_free(s);
		return NULL;
	}
	return s;
}

/* Drop the entry when neither the Service nor a slice of it is left. */
static void svc_maybe_drop(struct dns_zone *z, struct dns_svc *s)
{
	if (!s->present && s->nslices == 0)
		svc_free(kb_strmap_del(&z->svcs, s->key));
}

static void ns_count(struct dns_zone *z, const char *ns, int delta)
{
	intptr_t n = (intptr_t)kb_strmap_get(&z->nss, ns) + delta;
	if (n <= 0)
		kb_strmap_del(&z->nss, ns);
	else
		kb_strmap_put(&z->nss, ns, (void *)n, NULL);
}

static bool parse_ip(const msgpack_object *o, const char *path, uint32_t *ip)
{
	const char *s;
	size_t n;
	char buf[INET_ADDRSTRLEN];
	if (!kb_mp_str(o, path, &s, &n) || n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return false;
	*ip = a.s_addr;
	return true;
}

static char *strdup_lower(const msgpack_object *o, const char *path,
    const char *def)
{
	char *s = kb_mp_strdup(o, path);
	if (s == NULL && def != NULL)
		s = strdup(def);
	if (s != NULL)
		lower(s);
	return s;
}

static void read_ports(struct dns_svc *s, const msgpack_object *arr)
{
	if (arr == NULL || arr->type != MSGPACK_OBJECT_ARRAY ||
	    arr->via.array.size == 0)
		return;
	s->ports = calloc(arr->via.array.size, sizeof(*s->ports));
	if (s->ports == NULL)
		return;
	for (uint32_t i = 0; i < arr->via.array.size; i++) {
		const msgpack_object *p = &arr->via.array.ptr[i];
		int64_t port = 0;
		struct dns_port *d = &s->ports[s->nports];
		if (!kb_mp_int(p, "port", &port) || port <= 0 || port > 65535)
			continue;
		d->name = strdup_lower(p, "name", "");
		d->proto = strdup_lower(p, "protocol", "tcp");
		if (d->name == NULL || d->proto == NULL) {
			free(d->name);
			free(d->proto);
			continue;
		}
		d->port = (uint16_t)port;
		s->nports++;
	}
}

void dns_zone_service(struct dns_zone *z, const msgpack_object *svc,
    bool deleted)
{
	char *ns = kb_mp_strdup(svc, "metadata.namespace");
	char *name = kb_mp_strdup(svc, "metadata.name");
	if (ns == NULL || name == NULL)
		goto out;
	pthread_rwlock_wrlock(&z->lock);
	struct dns_svc *s = svc_get(z, ns, name);
	if (s == NULL)
		goto unlock;
	unpublish(z, s);
	ports_free(s);
	if (s->present)
		ns_count(z, ns, -1);
	s->present = !deleted;
	if (s->present) {
		ns_count(z, ns, +1);
		s->headless = kb_mp_streq(svc, "spec.clusterIP", "None");
		s->cluster_ip = 0;
		if (!s->headless)
			parse_ip(svc, "spec.clusterIP", &s->cluster_ip);
		s->publish_not_ready = false;
		kb_mp_bool(svc, "spec.publishNotReadyAddresses",
		    &s->publish_not_ready);
		read_ports(s, kb_mp_get(svc, "spec.ports"));
		publish(z, s);
	} else {
		svc_maybe_drop(z, s);
	}
	__atomic_add_fetch(&z->gen, 1, __ATOMIC_RELEASE);
unlock:
	pthread_rwlock_unlock(&z->lock);
out:
	free(ns);
	free(name);
}

static void slice_detach(struct dns_zone *z, struct dns_slice *sl)
{
	struct dns_svc *s = kb_strmap_get(&z->svcs, sl->svc);
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nslices; i++)
		if (s->slices[i] == sl) {
			s->slices[i] = s->slices[--s->nslices];
			break;
		}
	unpublish(z, s);
	publish(z, s);
	svc_maybe_drop(z, s);
}

static void read_eps(struct dns_slice *sl, const msgpack_object *arr)
{
	if (arr == NULL || arr->type != MSGPACK_OBJECT_ARRAY ||
	    arr->via.array.size == 0)
		return;
	sl->eps = calloc(arr->via.array.size, sizeof(*sl->eps));
	if (sl->eps == NULL)
		return;
	for (uint32_t i = 0; i < arr->via.array.size; i++) {
		const msgpack_object *e = &arr->via.array.ptr[i];
		struct dns_ep *d = &sl->eps[sl->neps];
		if (!parse_ip(e, "addresses[0]", &d->ip))
			continue;
		/* ready: nil means ready (EndpointSlice API) */
		bool ready = true, term = false;
		kb_mp_bool(e, "conditions.ready", &ready);
		kb_mp_bool(e, "conditions.terminating", &term);
		d->ready = ready && !term;
		d->hostname = kb_mp_strdup(e, "hostname");
		sl->neps++;
	}
}

void dns_zone_slice(struct dns_zone *z, const msgpack_object *slice,
    bool deleted)
{
	char *ns = kb_mp_strdup(slice, "metadata.namespace");
	char *name = kb_mp_strdup(slice, "metadata.name");
	char *svc = kb_mp_strdup(slice,
	    "metadata.labels.kubernetes\\.io/service-name");
	char key[DNS_NAME_MAX];
	if (ns == NULL || name == NULL ||
	    snprintf(key, sizeof(key), "%s/%s", ns, name) >= (int)sizeof(key))
		goto out;
	pthread_rwlock_wrlock(&z->lock);
	struct dns_slice *old = kb_strmap_del(&z->slices, key);
	if (old != NULL) {
		slice_detach(z, old);
		slice_free(old);
	}
	if (!deleted && svc != NULL) {
		struct dns_slice *sl = calloc(1, sizeof(*sl));
		struct dns_svc *s = svc_get(z, ns, svc);
		char skey[DNS_NAME_MAX];
		snprintf(skey, sizeof(skey), "%s/%s", ns, svc);
		struct dns_slice **v = s == NULL ? NULL :
		    realloc(s->slices, (s->nslices + 1) * sizeof(*v));
		if (sl == NULL || v == NULL || !(sl->key = strdup(key)) ||
		    !(sl->svc = strdup(skey)) ||
		    kb_strmap_put(&z->slices, key, sl, NULL)) {
			if (v != NULL)
				s->slices = v;
			slice_free(sl);
			if (s != NULL)
				svc_maybe_drop(z, s);
		} else {
			s->slices = v;
			read_eps(sl, kb_mp_get(slice, "endpoints"));
			v[s->nslices++] = sl;
			unpublish(z, s);
			publish(z, s);
		}
	}
	__atomic_add_fetch(&z->gen, 1, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&z->lock);
out:
	free(ns);
	free(name);
	free(svc);
}

const struct dns_name *dns_zone_find(const struct dns_zone *z,
    const char *name)
{
	const struct dns_owned *o = kb_strmap_get(&z->names, name);
	return o == NULL ? NULL : &o->n;
}

/* name == suffix, or name ends with "." suffix: the part before into
 * head (without the dot). */
static bool under(const char *name, const char *suffix, char *head,
    size_t len)
{
	size_t n = strlen(name), s = strlen(suffix);
	if (n == s && !strcmp(name, suffix)) {
		head[0] = '\0';
		return true;
	}
	if (n <= s + 1 || name[n - s - 1] != '.' || strcmp(name + n - s, suffix))
		return false;
	if (n - s - 1 >= len)
		return false;
	memcpy(head, name, n - s - 1);
	head[n - s - 1] = '\0';
	return true;
}

bool dns_zone_exists(const struct dns_zone *z, const char *name)
{
	char head[DNS_NAME_MAX], suf[DNS_NAME_MAX];
	if (!strcmp(name, z->domain))
		return true;
	snprintf(suf, sizeof(suf), "svc.%s", z->domain);
	if (under(name, suf, head, sizeof(head)))
		return head[0] == '\0' || kb_strmap_get(&z->nss, head) != NULL;
	snprintf(suf, sizeof(suf), "pod.%s", z->domain);
	if (under(name, suf, head, sizeof(head)))
		return strchr(head, '.') == NULL; /* pod.D and NS.pod.D */
	return false;
}

bool dns_zone_pod_addr(const struct dns_zone *z, const char *name,
    uint32_t *addr)
{
	char head[DNS_NAME_MAX], suf[DNS_NAME_MAX];
	snprintf(suf, sizeof(suf), "pod.%s", z->domain);
	if (!under(name, suf, head, sizeof(head)))
		return false;
	char *dot = strchr(head, '.');
	if (dot == NULL || strchr(dot + 1, '.') != NULL || dot[1] == '\0')
		return false; /* exactly A-B-C-D.NS */
	*dot = '\0';
	unsigned b[4];
	char tail;
	if (sscanf(head, "%3u-%3u-%3u-%3u%c", &b[0], &b[1], &b[2], &b[3],
		&tail) != 4)
		return false;
	for (int i = 0; i < 4; i++)
		if (b[i] > 255)
			return false;
	uint8_t *p = (uint8_t *)addr;
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)b[i];
	return true;
}
