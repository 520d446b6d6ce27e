/* plugins/apiserver/azcache.c — the authorizer's decisions, remembered
 * (see azcache.h). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/strmap.h>

#include "azcache.h"

/* Sets are locked in stripes: API workers and event loops ask at once. */
#define AZ_STRIPES 64

struct az_entry {
	uint64_t hash;
	char *key;
	char *reason;
	bool allowed;
};

struct az_set {
	struct az_entry e[API_AZ_WAYS];
	unsigned next; /* the place the next new question takes */
};

static pthread_mutex_t az_mu[AZ_STRIPES] = { [0 ... AZ_STRIPES - 1] =
						 PTHREAD_MUTEX_INITIALIZER };
static struct az_set az_sets[API_AZ_SETS];

static size_t set_of(uint64_t h)
{
	return (size_t)(h >> 7) % API_AZ_SETS;
}

static struct az_entry *find(struct az_set *s, uint64_t h, const char *k)
{
	for (int i = 0; i < API_AZ_WAYS; i++)
		if (s->e[i].key && s->e[i].hash == h && !strcmp(s->e[i].key, k))
			return &s->e[i];
	return NULL;
}

bool api_az_lookup(const char *key, bool *allowed, char *reason, size_t rlen)
{
	uint64_t h = kb_hash64(key, strlen(key));
	size_t si = set_of(h);
	pthread_mutex_t *mu = &az_mu[si % AZ_STRIPES];
	pthread_mutex_lock(mu);
	const struct az_entry *e = find(&az_sets[si], h, key);
	if (e) {
		*allowed = e->allowed;
		if (rlen) {
			size_t n = e->reason ? strlen(e->reason) : 0;
			if (n >= rlen)
				n = rlen - 1;
			if (n)
				memcpy(reason, e->reason, n);
			reason[n] = '\0';
		}
	}
	pthread_mutex_unlock(mu);
	return e != NULL;
}

void api_az_store(const char *key, bool allowed, const char *reason)
{
	char *k = strdup(key), *why = strdup(reason ? reason : "");
	if (k == NULL || why == NULL) {
		free(k);
		free(why);
		return;
	}
	uint64_t h = kb_hash64(key, strlen(key));
	size_t si = set_of(h);
	struct az_set *s = &az_sets[si];
	pthread_mutex_t *mu = &az_mu[si % AZ_STRIPES];
	pthread_mutex_lock(mu);
	struct az_entry *e = find(s, h, key);
	if (e == NULL) {
		for (int i = 0; i < API_AZ_WAYS && e == NULL; i++)
			if (s->e[i].key == NULL)
				e = &s->e[i];
		if (e == NULL) {
			e = &s->e[s->next];
			s->next = (s->next + 1) % API_AZ_WAYS;
		}
	}
	char *old_k = e->key, *old_r = e->reason;
	e->hash = h;
	e->key = k;
	e->reason = why;
	e->allowed = allowed;
	pthread_mutex_unlock(mu);
	free(old_k);
	free(old_r);
}

size_t api_az_count(void)
{
	size_t n = 0;
	for (size_t si = 0; si < API_AZ_SETS; si++) {
		pthread_mutex_lock(&az_mu[si % AZ_STRIPES]);
		for (int i = 0; i < API_AZ_WAYS; i++)
			n += az_sets[si].e[i].key != NULL;
		pthread_mutex_unlock(&az_mu[si % AZ_STRIPES]);
	}
	return n;
}

__attribute__((destructor)) static void az_free(void)
{
	for (size_t si = 0; si < API_AZ_SETS; si++) {
		pthread_mutex_lock(&az_mu[si % AZ_STRIPES]);
		for (int i = 0; i < API_AZ_WAYS; i++) {
			free(az_sets[si].e[i].key);
			free(az_sets[si].e[i].reason);
			az_sets[si].e[i].key = az_sets[si].e[i].reason = NULL;
		}
		pthread_mutex_unlock(&az_mu[si % AZ_STRIPES]);
	}
}
