/* json_same.c -- comparing lossd's JSON trees with cJSON's (json_same.h). */
#include "json_same.h"

#include <string.h>

#include "json_tree.h"

int json_same_tree(const cJSON *a, const cJSON *b)
{
    for (; a != NULL && b != NULL; a = a->next, b = b->next) {
        if (a->type != b->type || a->valueint != b->valueint ||
            memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) != 0 ||
            (a->string == NULL) != (b->string == NULL) ||
            (a->string != NULL && strcmp(a->string, b->string) != 0) ||
            (a->valuestring == NULL) != (b->valuestring == NULL) ||
            (a->valuestring && strcmp(a->valuestring, b->valuestring)) ||
            (a->child != NULL && a->child->prev != NULL) !=
                (b->child != NULL && b->child->prev != NULL) ||
            !json_same_tree(a->child, b->child))
            return 0;
    }
    return a == NULL && b == NULL;
}

int json_links_ok(const cJSON *node)
{
    const cJSON *c, *last = NULL;

    for (c = node->child; c != NULL; last = c, c = c->next) {
        if (c != node->child && c->prev != last)
            return 0;
        if (!json_links_ok(c))
            return 0;
    }
    return node->child == NULL || node->child->prev == last;
}

int json_same_packed(const cJSON *a, const cJSON *b)
{
    const cJSON *c;
    size_t n, k;
    int numbers;

    for (; a != NULL && b != NULL; a = a->next, b = b->next) {
        if ((a->string == NULL) != (b->string == NULL) ||
            (a->string != NULL && strcmp(a->string, b->string) != 0))
            return 0;
        numbers = cJSON_IsArray(b) && b->child != NULL;
        for (c = b->child; c != NULL && numbers; c = c->next)
            numbers = cJSON_IsNumber(c);
        if (srv_json_packed(a) != numbers)
            return 0;
        if (!numbers) {
            if (a->type != b->type || a->valueint != b->valueint ||
                memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) ||
                (a->valuestring == NULL) != (b->valuestring == NULL) ||
                (a->valuestring && strcmp(a->valuestring, b->valuestring)) ||
                !json_links_ok(a) || !json_same_packed(a->child, b->child))
                return 0;
            continue;
        }
        n = srv_json_packed_len(a);
        if (a->type != (cJSON_Array | SRV_JSON_PACKED) || a->child != NULL ||
            n != (size_t)cJSON_GetArraySize(b))
            return 0;
        for (k = 0, c = b->child; k < n; k++, c = c->next)
            if (memcmp(&srv_json_packed_values(a)[k], &c->valuedouble,
                       sizeof(double)) != 0)
                return 0;
    }
    return a == NULL && b == NULL;
}
