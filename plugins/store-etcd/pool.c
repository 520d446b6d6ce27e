/* plugins/store-etcd/pool.c — worker threads for blocking etcd calls.
 *
 * The plugin's dispatch thread must not block, so every op is queued here.
 * Each worker keeps its own curl easy handle for its whole life: its
 * connection cache holds a keep-alive connection to each member, so steady
 * traffic pays no connection setup.
 */
#include "etcd.h"

#include <stdlib.h>

struct job {
	struct job *next;
	void *data;
};

struct ec_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;
	bool stopping;
	int n;
	pthread_t *thr;
	struct ec_client *client;
	ec_job_fn fn;
	void *arg;
};

static void *worker(void *arg)
{
	struct ec_pool *p = arg;
	struct ec_conn cn;
	struct ec_out o;
	bool have_conn = ec_conn_init(&cn) == 0;
	if (have_conn)
		ec_client_setopts(p->client, cn.h);
	ec_out_init(&o);
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		struct job *j = p->head;
		if (j) {
			p->head = j->next;
			if (!p->head)
				p->tail = NULL;
		}
		pthread_mutex_unlock(&p->mu);
		if (!j)
			break;
		if (!have_conn && (have_conn = ec_conn_init(&cn) == 0))
			ec_client_setopts(p->client, cn.h);
		p->fn(p->arg, j->data, have_conn ? &cn : NULL, &o);
		free(j);
	}
	ec_out_destroy(&o);
	if (have_conn)
		ec_conn_destroy(&cn);
	return NULL;
}

int ec_pool_start(struct ec_pool **out, struct ec_client *c, int n,
    ec_job_fn fn, void *arg)
{
	struct ec_pool *p = calloc(1, sizeof *p);
	if (!p)
		return KB_ENOMEM;
	p->thr = calloc((size_t)n, sizeof *p->thr);
	if (!p->thr) {
		free(p);
		return KB_ENOMEM;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->client = c;
	p->fn = fn;
	p->arg = arg;
	for (int i = 0; i < n; i++) {
		if (pthread_create(&p->thr[i], NULL, worker, p) != 0) {
			p->n = i;
			ec_pool_stop(p);
			ec_pool_free(p);
			return KB_ESYS;
		}
	}
	p->n = n;
	*out = p;
	return 0;
}

int ec_pool_push(struct ec_pool *p, void *data)
{
	struct job *j = malloc(sizeof *j);
	if (!j)
		return KB_ENOMEM;
	j->next = NULL;
	j->data = data;
	pthread_mutex_lock(&p->mu);
	if (p->stopping) {
		pthread_mutex_unlock(&p->mu);
		free(j);
		return KB_ECLOSED;
	}
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

void ec_pool_stop(struct ec_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	bool joined = p->stopping;
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (joined)
		return;
	for (int i = 0; i < p->n; i++)
		pthread_join(p->thr[i], NULL);
}

void ec_pool_free(struct ec_pool *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->thr);
	free(p);
}
