//! The pest parser generated from `grammar/herald.pest`, and the table that
//! names every grammar rule for error messages. Nothing here leaves the
//! `syntax` module.

use pest_derive::Parser;

#[derive(Parser)]
#[grammar = "../grammar/herald.pest"]
pub(crate) struct HeraldParser;

/// How an expected rule takes part in an error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Worth naming only when nothing better was expected: operators and
    /// optional continuations (`.`, `[`, `|`, `where`, ...).
    Low,
    /// The start of an expression.
    Expr,
    /// A top-level item, or the end of one (`EOI`).
    Item,
    /// Anything else worth naming.
    Normal,
    /// Silent helpers: never appear in pest's `positives`.
    Hidden,
}

/// The human name of a grammar rule, as used in "expected ..." messages, and
/// how it is treated there.
///
/// This match is exhaustive on purpose: a new grammar rule does not compile
/// until it has a name.
pub(crate) fn rule_info(rule: Rule) -> (&'static str, Class) {
    use Class::*;
    match rule {
        Rule::EOI => ("end of input", Item),
        Rule::WHITESPACE => ("whitespace", Hidden),
        Rule::item_entry | Rule::item_prefix => ("an item", Hidden),
        Rule::expr_entry => ("an expression", Hidden),
        Rule::item => ("an item", Item),
        Rule::ident_start | Rule::ident_char => ("an identifier", Hidden),
        Rule::keyword => ("a keyword", Hidden),
        Rule::ident => ("a name", Normal),
        Rule::field_name => ("a field name", Normal),
        Rule::kw_rule => ("`rule`", Normal),
        Rule::kw_match => ("`match`", Normal),
        Rule::kw_where => ("`where`", Low),
        Rule::kw_guard => ("`guard`", Normal),
        Rule::kw_let => ("`let`", Normal),
        Rule::kw_action => ("`action`", Normal),
        Rule::kw_const => ("`const`", Normal),
        Rule::kw_for => ("`for`", Normal),
        Rule::kw_in => ("`in`", Normal),
        Rule::kw_true => ("an expression", Expr),
        Rule::kw_false => ("an expression", Expr),
        Rule::kw_null => ("an expression", Expr),
        Rule::kw_set => ("`set`", Normal),
        Rule::kw_append => ("`append`", Normal),
        Rule::kw_to => ("`to`", Normal),
        Rule::kw_remove => ("`remove`", Normal),
        Rule::kw_exists | Rule::kw_count | Rule::kw_first | Rule::kw_all => ("an expression", Expr),
        Rule::kw_any => ("`any`", Normal),
        Rule::kw_event => ("an expression", Expr),
        Rule::kw_entity => ("`entity`", Normal),
        Rule::kw_type => ("`type`", Normal),
        Rule::kw_key => ("`key`", Normal),
        Rule::kw_discriminator => ("`discriminator`", Normal),
        Rule::kw_identity => ("`identity`", Normal),
        Rule::kw_recipient => ("`recipient`", Normal),
        Rule::kw_if => ("`if`", Normal),
        Rule::kw_else => ("`else`", Low),
        Rule::kw_upsert => ("`upsert`", Normal),
        Rule::kw_delete => ("`delete`", Normal),
        Rule::kw_add => ("`add`", Normal),
        Rule::kw_from => ("`from`", Low),
        Rule::kw_time => ("`time`", Normal),
        Rule::kw_window => ("`window`", Normal),
        Rule::kw_throttle => ("`throttle`", Normal),
        Rule::kw_by => ("`by`", Low),
        Rule::kw_distinct => ("`distinct`", Normal),
        Rule::window_clause => ("`window`", Normal),
        Rule::window_count => ("`count`", Normal),
        Rule::window_distinct => ("`distinct`", Normal),
        Rule::throttle_clause => ("`throttle`", Normal),
        Rule::kw_after | Rule::after_clause => ("`after`", Normal),
        Rule::kw_as | Rule::after_as => ("`as`", Low),
        Rule::kw_within => ("`within`", Normal),
        Rule::by_part => ("`by`", Low),
        Rule::window_cmp => ("a comparison", Normal),
        Rule::kw_test => ("`test`", Normal),
        Rule::kw_given => ("`given`", Normal),
        Rule::kw_now => ("`now`", Normal),
        Rule::kw_expect => ("`expect`", Normal),
        Rule::kw_fires => ("`fires`", Low),
        Rule::kw_does => ("`does not fire`", Low),
        Rule::kw_fire => ("`fire`", Normal),
        Rule::kw_no => ("`no`", Low),
        Rule::kw_rule_error => ("`rule_error`", Normal),
        Rule::kw_dead_letter => ("`dead_letter`", Normal),
        Rule::test_decl => ("`test`", Item),
        Rule::test_step => ("`given`, `now`, `event` or `expect`", Normal),
        Rule::given_step => ("`given`", Normal),
        Rule::now_step => ("`now`", Normal),
        Rule::event_step => ("`event`", Normal),
        Rule::expect_step => ("`expect`", Normal),
        Rule::expect_rule_error => ("`rule_error`", Normal),
        Rule::expect_dead_letter => ("`dead_letter`", Normal),
        Rule::expect_fires => ("`fires`", Normal),
        Rule::expect_not_fire => ("`does not fire`", Normal),
        Rule::expect_effect | Rule::effect_name => ("an effect (`notify`, `send_email`, `webhook`)", Normal),
        Rule::lbrace => ("`{`", Low),
        Rule::rbrace => ("`}`", Normal),
        Rule::lparen => ("`(`", Normal),
        Rule::call_open => ("`(`", Low),
        Rule::rparen => ("`)`", Normal),
        Rule::lbrack => ("`[`", Low),
        Rule::rbrack => ("`]`", Normal),
        Rule::comma => ("`,`", Normal),
        Rule::colon => ("`:`", Normal),
        Rule::arg_colon => ("`:`", Low),
        Rule::dot => ("`.`", Low),
        Rule::pipe => ("`|`", Low),
        Rule::star => ("`*`", Normal),
        Rule::question => ("`?`", Low),
        Rule::assign => ("`=`", Normal),
        Rule::wildcard => ("`_`", Normal),
        Rule::discriminator_decl => ("`discriminator`", Item),
        Rule::identity_decl => ("`identity`", Item),
        Rule::recipient_decl => ("`recipient`", Item),
        Rule::time_decl => ("`time`", Item),
        Rule::type_decl => ("`type`", Item),
        Rule::event_decl => ("`event`", Item),
        Rule::entity_decl => ("`entity`", Item),
        Rule::field_block => ("`{`", Normal),
        Rule::field_decl => ("a field declaration", Normal),
        Rule::type_expr => ("a type", Normal),
        Rule::list_type => ("a list type", Normal),
        Rule::type_name => ("a type name", Normal),
        Rule::const_decl => ("`const`", Item),
        Rule::rule_decl => ("`rule`", Item),
        Rule::clause => ("a clause", Normal),
        Rule::match_clause => ("`match`", Normal),
        Rule::event_types | Rule::event_name => ("an event type", Normal),
        Rule::where_part => ("`where`", Low),
        Rule::let_clause => ("`let`", Normal),
        Rule::guard_let_clause => ("`guard let`", Normal),
        Rule::guard_clause => ("`guard`", Normal),
        Rule::action_clause => ("`action`", Normal),
        Rule::pattern_block => ("`{`", Low),
        Rule::field_pattern => ("a field pattern", Normal),
        Rule::field_path => ("a field name", Normal),
        Rule::pattern => ("a pattern", Normal),
        Rule::pattern_literal => ("a literal", Normal),
        Rule::bind => ("a name", Normal),
        Rule::stmt => ("a statement", Normal),
        Rule::block => ("`{`", Normal),
        Rule::set_stmt => ("`set`", Normal),
        Rule::append_stmt => ("`append`", Normal),
        Rule::remove_stmt => ("`remove`", Normal),
        Rule::upsert_stmt => ("`upsert`", Normal),
        Rule::upsert_fields => ("`{`", Normal),
        Rule::upsert_field => ("a field", Normal),
        Rule::delete_stmt => ("`delete`", Normal),
        Rule::add_stmt => ("`add`", Normal),
        Rule::remove_from_stmt => ("`remove`", Normal),
        Rule::for_stmt => ("`for`", Normal),
        Rule::if_stmt => ("`if`", Normal),
        Rule::place => ("a field to change", Normal),
        Rule::expr
        | Rule::and_expr
        | Rule::not_expr
        | Rule::cmp_expr
        | Rule::coalesce_expr
        | Rule::sum_expr
        | Rule::prod_expr
        | Rule::unary_expr
        | Rule::postfix_expr => ("an expression", Expr),
        Rule::or_op => ("`or`", Low),
        Rule::and_op => ("`and`", Low),
        Rule::not_op => ("an expression", Expr),
        Rule::cmp_op => ("a comparison", Low),
        Rule::sum_op => ("an operator", Low),
        Rule::coalesce_op => ("`??`", Low),
        Rule::object_entry => ("an object entry (`name: value`)", Normal),
        Rule::prod_op => ("an operator", Low),
        Rule::neg_op => ("an expression", Expr),
        Rule::field_access => ("`.`", Low),
        Rule::index => ("`[`", Low),
        Rule::primary => ("an expression", Expr),
        Rule::paren
        | Rule::list
        | Rule::object
        | Rule::query
        | Rule::call
        | Rule::name
        | Rule::keyword_field
        | Rule::duration_lit
        | Rule::float_lit
        | Rule::int_lit
        | Rule::string => ("an expression", Expr),
        Rule::arg => ("an argument", Normal),
        Rule::exponent => ("an exponent", Hidden),
        Rule::str_text => ("string text", Normal),
        Rule::str_escape => ("an escape sequence", Normal),
        Rule::interp => ("`{`", Normal),
        Rule::interp_close => ("`}`", Normal),
    }
}
