/* catalog.c -- the /losses and /divergences catalogs, written from the
 * tables: for each loss or divergence its name, summary, inputs with shapes,
 * parameters with types, defaults and allowed values, and its outputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "json_out.h"
#include "table.h"

/* Shortest of %.15g / %.17g that reads back as x: defaults such as e read
 * well and stay exact. */
static void put_exact(srv_buf *b, double x)
{
    char s[32];

    snprintf(s, sizeof s, "%.15g", x);
    if (strtod(s, NULL) != x)
        snprintf(s, sizeof s, "%.17g", x);
    srv_buf_puts(b, s);
}

static void put_names(srv_buf *b, const char *const *names, size_t n)
{
    size_t i;

    srv_buf_put(b, "[", 1);
    for (i = 0; i < n && names[i]; i++) {
        if (i)
            srv_buf_put(b, ",", 1);
        srv_buf_string(b, names[i]);
    }
    srv_buf_put(b, "]", 1);
}

/* The inputs of the other form, that this one excludes. */
static void put_alternatives(srv_buf *b, const srv_loss *L, int choice,
                             const char *key)
{
    size_t i;
    int first = 1;

    srv_buf_puts(b, key);
    srv_buf_put(b, "[", 1);
    for (i = 0; i < L->ninputs; i++) {
        if (L->inputs[i].choice == 0 || L->inputs[i].choice == choice)
            continue;
        if (!first)
            srv_buf_put(b, ",", 1);
        srv_buf_string(b, L->inputs[i].name);
        first = 0;
    }
    srv_buf_put(b, "]", 1);
}

static void put_input(srv_buf *b, const srv_loss *L, const srv_input *in)
{
    static const char *const layered[] = {"L", "N", "D"};

    srv_buf_puts(b, "{\"name\":");
    srv_buf_string(b, in->name);
    srv_buf_puts(b, ",\"shape\":");
    put_names(b, in->shape, in->rank);
    if (in->flags & SRV_IN_LAYERED) {
        srv_buf_puts(b, ",\"layered_shape\":");
        put_names(b, layered, 3);
    }
    if (in->flags & SRV_IN_VECTOR) {
        srv_buf_puts(b, ",\"vector_shape\":");
        put_names(b, in->shape, 1);
    }
    srv_buf_puts(b, (in->flags & SRV_IN_INT) ? ",\"type\":\"integer\""
                                             : ",\"type\":\"number\"");
    srv_buf_puts(b, in->choice ? ",\"required\":false" : ",\"required\":true");
    if (in->choice)
        put_alternatives(b, L, in->choice, ",\"alternative_to\":");
    srv_buf_puts(b, (in->flags & SRV_IN_DIFF) ? ",\"differentiable\":true}"
                                              : ",\"differentiable\":false}");
}

static const char *type_text(srv_ptype t)
{
    static const char *const names[] = {"number", "integer", "boolean", "enum",
                                        "array"};
    return names[t];
}

static void put_default(srv_buf *b, const srv_param *p)
{
    srv_buf_puts(b, ",\"default\":");
    if (p->flags & SRV_P_NO_DEFAULT)
        srv_buf_puts(b, "null");
    else if (p->type == SRV_P_ENUM)
        srv_buf_string(b, p->values[(int)p->dflt]);
    else if (p->type == SRV_P_BOOLEAN)
        srv_buf_puts(b, p->dflt != 0 ? "true" : "false");
    else if (p->type == SRV_P_ARRAY)
        srv_buf_puts(b, "null");
    else
        put_exact(b, p->dflt);
}

static void put_bounds(srv_buf *b, const srv_param *p)
{
    if (p->lo > -1e308) {
        srv_buf_puts(b, (p->flags & SRV_P_LO_OPEN) ? ",\"exclusive_minimum\":"
                                                   : ",\"minimum\":");
        put_exact(b, p->lo);
    }
    if (p->hi < 1e308) {
        srv_buf_puts(b, (p->flags & SRV_P_HI_OPEN) ? ",\"exclusive_maximum\":"
                                                   : ",\"maximum\":");
        put_exact(b, p->hi);
    }
    if (p->flags & SRV_P_NOT_ONE)
        srv_buf_puts(b, ",\"not\":[1]");
}

/* The range of a number or integer; for an enum that also takes a number,
 * "or": {"type", range}. */
static void put_range(srv_buf *b, const srv_param *p)
{
    if (p->type == SRV_P_NUMBER || p->type == SRV_P_INTEGER) {
        put_bounds(b, p);
    } else if (p->flags & (SRV_P_OR_NUMBER | SRV_P_OR_INTEGER)) {
        srv_buf_puts(b, (p->flags & SRV_P_OR_INTEGER)
                            ? ",\"or\":{\"type\":\"integer\""
                            : ",\"or\":{\"type\":\"number\"");
        put_bounds(b, p);
        srv_buf_put(b, "}", 1);
    }
}

static void put_only_with(srv_buf *b, const srv_loss *L, int choice)
{
    size_t i;
    int first = 1;

    srv_buf_puts(b, ",\"only_with\":[");
    for (i = 0; i < L->ninputs; i++) {
        if (L->inputs[i].choice != choice)
            continue;
        if (!first)
            srv_buf_put(b, ",", 1);
        srv_buf_string(b, L->inputs[i].name);
        first = 0;
    }
    srv_buf_put(b, "]", 1);
}

static void put_param(srv_buf *b, const srv_loss *L, const srv_param *p)
{
    srv_buf_puts(b, "{\"name\":");
    srv_buf_string(b, p->name);
    srv_buf_puts(b, ",\"type\":");
    srv_buf_string(b, type_text(p->type));
    put_default(b, p);
    if (p->type == SRV_P_ENUM) {
        srv_buf_puts(b, ",\"values\":");
        put_names(b, p->values, SIZE_MAX);
    }
    if (p->type == SRV_P_ARRAY) {
        srv_buf_puts(b, ",\"shape\":");
        put_names(b, &p->shape, 1);
    }
    put_range(b, p);
    if (L && p->choice)
        put_only_with(b, L, p->choice);
    srv_buf_put(b, "}", 1);
}

/* An estimate's outputs: metrics, effective parameters and the sample
 * counts n_<input>. */
static void put_estimate_outputs(srv_buf *b, const srv_loss *L)
{
    size_t i;

    srv_buf_puts(b, ",\"outputs\":{\"metrics\":");
    put_names(b, L->metrics, SIZE_MAX);
    srv_buf_puts(b, ",\"parameters\":");
    put_names(b, L->effective, SIZE_MAX);
    srv_buf_puts(b, ",\"counts\":[");
    for (i = 0; i < L->ninputs; i++) {
        srv_buf_puts(b, i ? ",\"n_" : "\"n_");
        srv_buf_puts(b, L->inputs[i].name);
        srv_buf_put(b, "\"", 1);
    }
    srv_buf_puts(b, "]}");
}

static void put_outputs(srv_buf *b, const srv_loss *L)
{
    size_t i;
    int first = 1;

    if (L->flags & SRV_L_ESTIMATE) {
        put_estimate_outputs(b, L);
        return;
    }
    srv_buf_puts(b, ",\"outputs\":{\"per_sample\":");
    srv_buf_puts(b, L->per_sample ? "true" : "false");
    srv_buf_puts(b, ",\"gradients\":[");
    for (i = 0; i < L->ninputs; i++) {
        if (!(L->inputs[i].flags & SRV_IN_DIFF))
            continue;
        if (!first)
            srv_buf_put(b, ",", 1);
        srv_buf_string(b, L->inputs[i].name);
        first = 0;
    }
    srv_buf_puts(b, "],\"metrics\":");
    put_names(b, L->metrics, SIZE_MAX);
    if (L->generator_grad) {
        srv_buf_puts(b, ",\"generator\":{\"loss\":true,\"gradients\":");
        put_names(b, &L->generator_grad, 1);
        srv_buf_put(b, "}", 1);
    }
    srv_buf_put(b, "}", 1);
}

/* Whether common field i applies to L: an estimate takes precision only. */
static int common_listed(const srv_loss *L, size_t i)
{
    return !(L->flags & SRV_L_ESTIMATE) ||
           strcmp(srv_common_params[i].name, "precision") == 0;
}

static void put_entry(srv_buf *b, const srv_loss *L)
{
    size_t i;

    srv_buf_puts(b, "{\"name\":");
    srv_buf_string(b, L->name);
    if (L->flags & SRV_L_ESTIMATE) {
        srv_buf_puts(b, ",\"path\":\"/divergence/");
        srv_buf_puts(b, L->name);
        srv_buf_put(b, "\"", 1);
    }
    srv_buf_puts(b, ",\"summary\":");
    srv_buf_string(b, L->summary);
    srv_buf_puts(b, ",\"inputs\":[");
    for (i = 0; i < L->ninputs; i++) {
        if (i)
            srv_buf_put(b, ",", 1);
        put_input(b, L, &L->inputs[i]);
    }
    srv_buf_puts(b, "],\"parameters\":[");
    for (i = 0; i < L->nparams + srv_ncommon_params; i++) {
        if (i >= L->nparams && !common_listed(L, i - L->nparams))
            continue;
        if (i)
            srv_buf_put(b, ",", 1);
        if (i < L->nparams)
            put_param(b, L, &L->params[i]);
        else
            put_param(b, NULL, &srv_common_params[i - L->nparams]);
    }
    srv_buf_put(b, "]", 1);
    put_outputs(b, L);
    srv_buf_put(b, "}", 1);
}

static char *finish(srv_buf *b, size_t *len)
{
    if (b->oom) {
        srv_buf_free(b);
        return NULL;
    }
    *len = b->len;
    return b->p;
}

char *srv_catalog_names_json(size_t *len)
{
    srv_buf b;
    size_t i;

    srv_buf_init(&b, 256);
    srv_buf_put(&b, "[", 1);
    for (i = 0; i < srv_nlosses; i++) {
        if (i)
            srv_buf_put(&b, ",", 1);
        srv_buf_string(&b, srv_losses[i].name);
    }
    srv_buf_put(&b, "]", 1);
    return finish(&b, len);
}

char *srv_catalog_json(const char *name, size_t *len)
{
    const srv_loss *L;
    srv_buf b;
    size_t i;

    if (name) {
        if ((L = srv_loss_find(name)) == NULL)
            return NULL;
        srv_buf_init(&b, 2048);
        put_entry(&b, L);
        return finish(&b, len);
    }
    srv_buf_init(&b, 32768);
    srv_buf_puts(&b, "{\"losses\":[");
    for (i = 0; i < srv_nlosses; i++) {
        if (i)
            srv_buf_put(&b, ",", 1);
        put_entry(&b, &srv_losses[i]);
    }
    srv_buf_puts(&b, "]}");
    return finish(&b, len);
}

char *srv_divergences_json(const char *name, size_t *len)
{
    const srv_loss *L;
    srv_buf b;
    size_t i;

    if (name) {
        if ((L = srv_divergence_find(name)) == NULL)
            return NULL;
        srv_buf_init(&b, 2048);
        put_entry(&b, L);
        return finish(&b, len);
    }
    srv_buf_init(&b, 4096);
    srv_buf_puts(&b, "{\"divergences\":[");
    for (i = 0; i < srv_ndivergences; i++) {
        if (i)
            srv_buf_put(&b, ",", 1);
        put_entry(&b, &srv_divergences[i]);
    }
    srv_buf_puts(&b, "]}");
    return finish(&b, len);
}
