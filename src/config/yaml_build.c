/* Reading the configuration text into a libyaml document through libyaml's event API
 * (yaml_parser_parse), with the limits of the configuration file (load_internal.h)
 * checked as each event arrives: file size, directives, nesting depth, anchors,
 * aliases, nodes and the nodes that aliases stand for. Reading stops at the first limit
 * exceeded, before libyaml sees more of a hostile file: its own cost grows
 * quadratically with flow nesting and with %TAG directives. The document is built as
 * libyaml's loader builds it (an alias is the node it names, shared, never copied),
 * except that an alias to a node that contains it is refused (no cycles). */
#include "config/load_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define YB_TABLE_SIZE 8192 /* anchor hash slots: a power of two above 2 * LD_MAX_ANCHORS */

_Static_assert(YB_TABLE_SIZE >= 2 * LD_MAX_ANCHORS, "anchor table too small");
_Static_assert((YB_TABLE_SIZE & (YB_TABLE_SIZE - 1)) == 0, "anchor table not a power of two");

struct yb_anchor {
    char *name;
    int node;           /* the node the anchor names */
    size_t start_total; /* yb_total() before that node was counted */
    size_t weight;      /* nodes it stands for, aliases expanded; 0 while still open */
};

struct yb_frame {
    int node;    /* an open sequence or mapping */
    int key;     /* mapping: the key node waiting for its value, 0 when none */
    long anchor; /* index of its anchor in yb.anchors, -1 when none */
};

struct yb {
    struct ld *ld;
    yaml_document_t *doc;
    struct yb_frame stack[LD_MAX_DEPTH];
    size_t depth;
    size_t nodes;     /* nodes as written */
    size_t aliases;   /* alias events */
    size_t expansion; /* nodes that aliases stand for */
    struct yb_anchor *anchors;
    size_t n_anchors;
    unsigned *table; /* anchor index + 1 per slot, 0 when free */
    bool stream_ended;
};

/* ---- positions and syntax errors ---- */

/* 1-based line and column of byte `off` in text (reader errors carry only an offset). */
static void yb_offset_pos(const char *text, size_t len, size_t off, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* Records libyaml's error (reader, scanner or parser) at its position. */
static void yb_syntax_error(struct ld *ld, const yaml_parser_t *p, const char *text, size_t len)
{
    size_t line = p->problem_mark.line + 1, col = p->problem_mark.column + 1;
    const char *problem = p->problem ? p->problem : "invalid document";

    if (p->error == YAML_READER_ERROR) {
        yb_offset_pos(text, len, p->problem_offset, &line, &col);
        ld_error_raw(ld, line, col, "invalid input: %s", problem);
    } else if (p->error == YAML_MEMORY_ERROR) {
        ld->oom = true;
    } else if (p->context != NULL) {
        ld_error_raw(ld, line, col, "YAML syntax error: %s (%s at line %zu)", problem, p->context,
                     p->context_mark.line + 1);
    } else {
        ld_error_raw(ld, line, col, "YAML syntax error: %s", problem);
    }
}

static size_t yb_line(const yaml_mark_t *m)
{
    return m->line + 1;
}

static size_t yb_col(const yaml_mark_t *m)
{
    return m->column + 1;
}

/* ---- limits checked on the raw text ---- */

/* Length of the line break starting at p (\n, \r\n, \r, NEL, LS, PS in UTF-8), or 0. */
static size_t yb_break_len(const unsigned char *p, const unsigned char *end)
{
    if (p[0] == '\n')
        return 1;
    if (p[0] == '\r')
        return end - p > 1 && p[1] == '\n' ? 2 : 1;
    if (p[0] == 0xC2 && end - p > 1 && p[1] == 0x85)
        return 2;
    if (p[0] == 0xE2 && end - p > 2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9))
        return 3;
    return 0;
}

/* Refuses more than LD_MAX_DIRECTIVES lines starting with '%' (every directive is one;
 * libyaml compares each %TAG with all the earlier ones before it returns an event). */
static int yb_check_directives(struct ld *ld, const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    size_t line = 1, n = 0;
    bool at_start = true;

    while (p < end) {
        if (at_start && *p == '%' && ++n > LD_MAX_DIRECTIVES) {
            ld_error_raw(ld, line, 1,
                         "directive limit exceeded: more than %d lines start with '%%' (YAML "
                         "directives)",
                         LD_MAX_DIRECTIVES);
            return -1;
        }
        size_t b = yb_break_len(p, end);
        at_start = b != 0;
        line += b != 0;
        p += b ? b : 1;
    }
    return 0;
}

/* ---- anchors ---- */

static uint32_t yb_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The slot of anchor `name`, or of the free slot where it would go. */
static size_t yb_slot(const struct yb *b, const char *name)
{
    size_t i = yb_hash(name) & (YB_TABLE_SIZE - 1);
    while (b->table[i] != 0 && strcmp(b->anchors[b->table[i] - 1].name, name) != 0)
        i = (i + 1) & (YB_TABLE_SIZE - 1);
    return i;
}

/* Index of anchor `name`, or -1 when it was never defined. */
static long yb_find(const struct yb *b, const char *name)
{
    if (b->table == NULL)
        return -1;
    unsigned v = b->table[yb_slot(b, name)];
    return v ? (long)v - 1 : -1;
}

/* Checks that one more anchor called `name` may be defined at `m`: 0, or -1 after
 * reporting the anchor limit or a duplicate. */
static int yb_check_anchor(struct yb *b, const char *name, const yaml_mark_t *m)
{
    if (b->n_anchors == LD_MAX_ANCHORS) {
        ld_error_raw(b->ld, yb_line(m), yb_col(m),
                     "anchor limit exceeded: more than %d anchors (&name)", LD_MAX_ANCHORS);
        return -1;
    }
    long i = yb_find(b, name);
    if (i >= 0) {
        const yaml_node_t *first = yaml_document_get_node(b->doc, b->anchors[i].node);
        ld_error_raw(b->ld, yb_line(m), yb_col(m),
                     "YAML syntax error: duplicate anchor '&%s' (first defined at line %zu)", name,
                     ld_line(first));
        return -1;
    }
    return 0;
}

/* Records anchor `name` for node `node`, whose count started at `start_total`; returns
 * its index, or -1 when out of memory. */
static long yb_add_anchor(struct yb *b, const char *name, int node, size_t start_total)
{
    if (b->table == NULL) {
        b->table = calloc(YB_TABLE_SIZE, sizeof(*b->table));
        b->anchors = calloc(LD_MAX_ANCHORS, sizeof(*b->anchors));
        if (b->table == NULL || b->anchors == NULL) {
            b->ld->oom = true;
            return -1;
        }
    }
    char *copy = strdup(name);
    if (copy == NULL) {
        b->ld->oom = true;
        return -1;
    }
    size_t i = b->n_anchors++;
    b->anchors[i] = (struct yb_anchor){copy, node, start_total, 0};
    b->table[yb_slot(b, name)] = (unsigned)i + 1;
    return (long)i;
}

/* ---- nodes ---- */

/* Nodes counted so far, each alias counting as the nodes it stands for. */
static size_t yb_total(const struct yb *b)
{
    return b->nodes + b->expansion;
}

/* Counts one node at `m`: 0, or -1 after reporting the node limit. */
static int yb_count_node(struct yb *b, const yaml_mark_t *m)
{
    if (b->nodes == LD_MAX_NODES) {
        ld_error_raw(b->ld, yb_line(m), yb_col(m),
                     "node limit exceeded: more than %d values, lists and mappings", LD_MAX_NODES);
        return -1;
    }
    b->nodes++;
    return 0;
}

/* The tag to give libyaml's document API: NULL (its default) for none or "!". */
static const yaml_char_t *yb_tag(const yaml_char_t *tag)
{
    return tag == NULL || strcmp((const char *)tag, "!") == 0 ? NULL : tag;
}

/* Adds node `id` to the innermost open collection (nothing for the root). */
static int yb_attach(struct yb *b, int id)
{
    if (b->depth == 0)
        return 0;
    struct yb_frame *f = &b->stack[b->depth - 1];
    int ok;
    if (yaml_document_get_node(b->doc, f->node)->type == YAML_SEQUENCE_NODE) {
        ok = yaml_document_append_sequence_item(b->doc, f->node, id);
    } else if (f->key == 0) {
        f->key = id;
        return 0;
    } else {
        ok = yaml_document_append_mapping_pair(b->doc, f->node, f->key, id);
        f->key = 0;
    }
    if (!ok)
        b->ld->oom = true;
    return ok ? 0 : -1;
}

/* Gives node `id` the event's position and attaches it; registers its anchor (index in
 * *anchor, -1 for none). */
static int yb_place(struct yb *b, int id, const yaml_event_t *ev, const yaml_char_t *anchor,
                    size_t start_total, long *anchor_index)
{
    *anchor_index = -1;
    if (id == 0) {
        b->ld->oom = true;
        return -1;
    }
    yaml_node_t *n = yaml_document_get_node(b->doc, id);
    n->start_mark = ev->start_mark;
    n->end_mark = ev->end_mark;
    if (anchor != NULL) {
        *anchor_index = yb_add_anchor(b, (const char *)anchor, id, start_total);
        if (*anchor_index < 0)
            return -1;
    }
    return yb_attach(b, id);
}

/* Appends a scalar node that takes over the event's value (as libyaml's own loader
 * does) and has no tag (the loaders never read tags): no copy, no allocation but the
 * node array's growth. Returns its id, or 0 when out of memory. */
static int yb_add_scalar(struct yb *b, yaml_event_t *ev)
{
    yaml_document_t *d = b->doc;
    if (d->nodes.top == d->nodes.end) {
        size_t n = (size_t)(d->nodes.end - d->nodes.start), cap = n ? 2 * n : 64;
        yaml_node_t *p = realloc(d->nodes.start, cap * sizeof(*p));
        if (p == NULL)
            return 0;
        d->nodes.top = p + n;
        d->nodes.start = p;
        d->nodes.end = p + cap;
    }
    yaml_node_t *n = d->nodes.top++;
    *n = (yaml_node_t){.type = YAML_SCALAR_NODE};
    n->data.scalar.value = ev->data.scalar.value;
    n->data.scalar.length = ev->data.scalar.length;
    n->data.scalar.style = ev->data.scalar.style;
    ev->data.scalar.value = NULL;
    return (int)(d->nodes.top - d->nodes.start);
}

static int yb_scalar(struct yb *b, yaml_event_t *ev)
{
    const yaml_char_t *anchor = ev->data.scalar.anchor;
    size_t start = yb_total(b);
    long ai;

    if (yb_count_node(b, &ev->start_mark) < 0 ||
        (anchor != NULL && yb_check_anchor(b, (const char *)anchor, &ev->start_mark) < 0))
        return -1;
    if (yb_place(b, yb_add_scalar(b, ev), ev, anchor, start, &ai) < 0)
        return -1;
    if (ai >= 0)
        b->anchors[ai].weight = 1;
    return 0;
}

/* A sequence or mapping starts: checks the depth limit first, then opens it. */
static int yb_open(struct yb *b, const yaml_event_t *ev)
{
    bool map = ev->type == YAML_MAPPING_START_EVENT;
    const yaml_char_t *anchor =
        map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
    const yaml_char_t *tag = yb_tag(map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
    size_t start = yb_total(b);
    long ai;

    if (b->depth == LD_MAX_DEPTH) {
        ld_error_raw(b->ld, yb_line(&ev->start_mark), yb_col(&ev->start_mark),
                     "nesting depth limit exceeded: more than %d nested lists and mappings",
                     LD_MAX_DEPTH);
        return -1;
    }
    if (yb_count_node(b, &ev->start_mark) < 0 ||
        (anchor != NULL && yb_check_anchor(b, (const char *)anchor, &ev->start_mark) < 0))
        return -1;
    int id = map ? yaml_document_add_mapping(b->doc, tag, ev->data.mapping_start.style)
                 : yaml_document_add_sequence(b->doc, tag, ev->data.sequence_start.style);
    if (yb_place(b, id, ev, anchor, start, &ai) < 0)
        return -1;
    b->stack[b->depth++] = (struct yb_frame){id, 0, ai};
    return 0;
}

/* A sequence or mapping ends: its anchor now knows how many nodes it stands for. */
static int yb_close(struct yb *b, const yaml_event_t *ev)
{
    struct yb_frame *f = &b->stack[--b->depth];
    yaml_document_get_node(b->doc, f->node)->end_mark = ev->end_mark;
    if (f->anchor >= 0)
        b->anchors[f->anchor].weight = yb_total(b) - b->anchors[f->anchor].start_total;
    return 0;
}

/* An alias: counted against the alias limit, and the nodes it stands for against the
 * alias expansion limit; then the named node is attached again. */
static int yb_alias(struct yb *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    size_t line = yb_line(&ev->start_mark), col = yb_col(&ev->start_mark);

    if (b->aliases == LD_MAX_ALIASES) {
        ld_error_raw(b->ld, line, col, "alias limit exceeded: more than %d aliases (*name)",
                     LD_MAX_ALIASES);
        return -1;
    }
    b->aliases++;
    long i = yb_find(b, name);
    if (i < 0) {
        ld_error_raw(b->ld, line, col, "YAML syntax error: found undefined alias '*%s'", name);
        return -1;
    }
    const struct yb_anchor *a = &b->anchors[i];
    if (a->weight == 0) {
        ld_error_raw(b->ld, line, col,
                     "alias '*%s' is inside the node it names (recursive aliases are not "
                     "supported)",
                     name);
        return -1;
    }
    if (a->weight > LD_MAX_ALIAS_EXPANSION - b->expansion) {
        ld_error_raw(b->ld, line, col,
                     "alias expansion limit exceeded: aliases stand for more than %d nodes",
                     LD_MAX_ALIAS_EXPANSION);
        return -1;
    }
    b->expansion += a->weight;
    return yb_attach(b, a->node);
}

/* Handles one event of the first document (a scalar's value is taken over): 0 to go
 * on, 1 at the end of the document (or of a stream without one), -1 after an error. */
static int yb_event(struct yb *b, yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return yb_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        return yb_open(b, ev);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return yb_close(b, ev);
    case YAML_ALIAS_EVENT:
        return yb_alias(b, ev);
    case YAML_DOCUMENT_END_EVENT:
        return 1;
    case YAML_STREAM_END_EVENT:
        b->stream_ended = true;
        return 1;
    default:
        return 0;
    }
}

/* After the first document: refuses a second one at the position of its root node,
 * reading no further than that node's first event. */
static void yb_refuse_more(struct yb *b, yaml_parser_t *p, const char *text, size_t len)
{
    yaml_event_t ev;

    for (int i = 0; i < 2; i++) {
        if (!yaml_parser_parse(p, &ev)) {
            yb_syntax_error(b->ld, p, text, len);
            return;
        }
        yaml_event_type_t t = ev.type;
        size_t line = yb_line(&ev.start_mark), col = yb_col(&ev.start_mark);
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT)
            return;
        if (t != YAML_DOCUMENT_START_EVENT) {
            ld_error_raw(b->ld, line, col, "only one YAML document is allowed");
            return;
        }
    }
}

/* Reads events to the end of the first document: 0 when read, -1 after an error. */
static int yb_run(struct yb *b, yaml_parser_t *p, const char *text, size_t len)
{
    yaml_event_t ev;
    int r;

    do {
        if (!yaml_parser_parse(p, &ev)) {
            yb_syntax_error(b->ld, p, text, len);
            return -1;
        }
        r = yb_event(b, &ev);
        yaml_event_delete(&ev);
    } while (r == 0);
    if (r < 0)
        return -1;
    if (!b->stream_ended)
        yb_refuse_more(b, p, text, len);
    return 0;
}

static void yb_free(struct yb *b)
{
    for (size_t i = 0; i < b->n_anchors; i++)
        free(b->anchors[i].name);
    free(b->anchors);
    free(b->table);
}

/* Skips a UTF-8 byte order mark; refuses UTF-16 (the directive count reads UTF-8, the
 * one encoding the parser is then told to read). 0, or -1 after an error. */
static int yb_check_encoding(struct ld *ld, const char **text, size_t *len)
{
    const unsigned char *p = (const unsigned char *)*text;

    if (*len >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) {
        *text += 3;
        *len -= 3;
    } else if (*len >= 2 && ((p[0] == 0xFF && p[1] == 0xFE) || (p[0] == 0xFE && p[1] == 0xFF))) {
        ld_error_raw(ld, 1, 1,
                     "invalid input: the file must be UTF-8 (it starts with a UTF-16 byte order "
                     "mark)");
        return -1;
    }
    return 0;
}

/* Sizes the document's node array once for the most nodes `len` bytes can hold (a node
 * takes at least about a byte; never more than the node limit): no copy as it fills,
 * and the pages it does not use are never touched. False when out of memory. */
static bool yb_reserve(yaml_document_t *d, size_t len)
{
    size_t cap = len + 16 < LD_MAX_NODES ? len + 16 : LD_MAX_NODES;
    yaml_node_t *p = realloc(d->nodes.start, cap * sizeof(*p));
    if (p == NULL)
        return false;
    d->nodes.start = d->nodes.top = p;
    d->nodes.end = p + cap;
    return true;
}

int ld_build_document(struct ld *ld, const char *text, size_t len, yaml_document_t *doc)
{
    yaml_parser_t parser;
    struct yb b = {.ld = ld, .doc = doc};

    if (len > LD_MAX_FILE_SIZE) {
        ld_error_raw(ld, 1, 1, "%s", LD_FILE_SIZE_MSG);
        return -1;
    }
    if (yb_check_encoding(ld, &text, &len) < 0)
        return -1;
    if (yb_check_directives(ld, text, len) < 0)
        return -1;
    if (!yaml_parser_initialize(&parser)) {
        ld->oom = true;
        return -1;
    }
    if (!yaml_document_initialize(doc, NULL, NULL, NULL, 1, 1)) {
        yaml_parser_delete(&parser);
        ld->oom = true;
        return -1;
    }
    if (!yb_reserve(doc, len)) {
        yaml_document_delete(doc);
        yaml_parser_delete(&parser);
        ld->oom = true;
        return -1;
    }
    /* UTF-8 only, so that the directive count above sees every line start */
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int r = yb_run(&b, &parser, text, len);
    yaml_parser_delete(&parser);
    yb_free(&b);
    if (r < 0)
        yaml_document_delete(doc);
    return r;
}
