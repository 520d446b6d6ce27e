/* plugins/apiserver/busapi.h — the `api` bus service (busapi.c). */
#ifndef KUBUS_APISERVER_BUSAPI_H
#define KUBUS_APISERVER_BUSAPI_H

#include "server.h"

struct api_busapi;

/* During init: register the `api` service. */
struct api_busapi *api_busapi_new(struct api_server *s);
/* During start: the worker threads. */
int api_busapi_start(struct api_busapi *ba);
/* During stop: end workers and every bus watch. */
void api_busapi_stop(struct api_busapi *ba);
void api_busapi_free(struct api_busapi *ba);

#endif
