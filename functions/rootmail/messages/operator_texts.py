"""The operators' words, in English and Japanese: every text the digest, the slash command, the rule modal and the
retry outcome show, by key (a missing language falls back to English)."""

from __future__ import annotations

_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "digest_title": "rootmail digest · {now}",
        "digest_summary": "{queued} mail(s) queued: {unclassified} unclassified in {patterns} pattern(s), "
        "{failed} for another reason in {reasons} reason(s).",
        "all_processed": "All processed: no mail is queued.",
        "unclassified_heading": "*Unclassified mail* (no rule knows these)",
        "failed_heading": "*Queued for another reason* (a delivery failed, no known account, a queue rule)",
        "unclassified_none": "Unclassified mail: all processed.",
        "failed_none": "Queued for another reason: all processed.",
        "pattern_line": "*{count} mail(s)* · {accounts} account(s) · {sender}",
        "reason_line": "*{count} mail(s)* · {accounts} account(s)",
        "seen": "first {first} · last {last}",
        "sample": "e.g. “{subject}”",
        "see_mails": "Pattern `{id}` · see the mails: `/rootmail list {id}`",
        "more_patterns": "…and {more} more pattern(s): `rootmail digest` prints them all.",
        "create_rule": "Create a rule",
        "retry_these": "Retry these",
        "no_sender": "(no sender)",
        "help": "*/rootmail* — the queue of mail waiting for a retry\n"
        "• `/rootmail list [PATTERN] [PAGE]` — queued mail, newest first\n"
        "• `/rootmail show ID` — one mail: sender, accounts, why it is queued\n"
        "• `/rootmail retry` — re-run every queued mail with the current rules\n"
        "• `/rootmail retry ID…` — re-run these mails\n"
        "• `/rootmail retry pattern P` — re-run one digest pattern\n"
        "The outcome of a retry is posted here when it is done.",
        "list_title": "Queued mail{scope}, page {page} of {pages} ({total} in all)",
        "list_scope": " of pattern `{pattern}`",
        "list_empty": "No mail is queued{scope}.",
        "list_next": "Next page: `/rootmail list {args}`",
        "list_line": "`{id}` · {at} · {sender}\n{subject}\n_{reason}_",
        "show_missing": "No mail `{id}` in the ledger.",
        "show": "*{subject}*\nFrom {sender} · received {at}\nState *{state}*{reason}\n"
        "Category {category} · action {action} · accounts {accounts}\nID `{id}` · attempts {attempts}",
        "show_reason": " — {reason}",
        "retry_started": "{who} asked for a retry of {what}. Re-running with the current rules; "
        "the outcome follows here.",
        "retry_all": "every queued mail",
        "retry_ids": "{count} mail(s)",
        "retry_pattern": "pattern `{pattern}`",
        "retry_outcome": "*Retry of {what} done* ({who}): {total} mail(s) re-run.",
        "retry_nothing": "*Retry of {what}* ({who}): nothing to retry.{skipped}",
        "retry_counts": "{forwarded} forwarded · {ticketed} ticketed · {escalated} escalated · "
        "{restricted} restricted · {quarantined} quarantined · {ignored} ignored · *{queued} still queued*",
        "retry_unfinished": "{count} still running when the retry stopped waiting: `/rootmail show ID` later.",
        "retry_why": "Still queued because:",
        "retry_skipped": "Skipped: {skipped}.",
        "retry_remaining": "{count} more queued mail(s) wait: run the retry again.",
        "refused": "Refused: {reason}",
        "modal_title": "Rule from a pattern",
        "modal_submit": "Save rule",
        "modal_close": "Cancel",
        "modal_intro": "{count} queued mail(s) of pattern `{id}`, e.g. “{subject}”.",
        "field_id": "Rule ID",
        "field_description": "Description (why this rule exists)",
        "field_category": "Category",
        "field_action": "Action",
        "field_sender": "Sender address",
        "field_subject": "Subject pattern (regular expression)",
        "field_priority": "Priority (0–1000, higher wins among equals)",
        "rule_saved": "Rule `{rule}` saved by {who}: {category} → {action}. {count} queued mail(s) of pattern "
        "`{pattern}` can be re-run with it.",
        "rule_exists": "A rule with this ID already exists: choose another.",
        "rule_preview": "Preview: it takes {taken} of {sampled} queued mail(s) checked; a retry would give {actions}.",
        "suggested": "Suggested category: *{category}* ({why}). A person decides: nothing is applied by itself.",
        "suggested_short": "suggested: *{category}* ({why})",
        "signal_words": "Urgent words: {words}. No rule knows this mail: it waits in the queue for one.",
        "alerted": "{count} alerted at once for urgent words ({words})",
        "digest_alerted": "{count} of them alerted the operators at once for urgent words.",
    },
    "ja": {
        "digest_title": "rootmail ダイジェスト · {now}",
        "digest_summary": "キュー内のメール {queued} 件: 未分類 {unclassified} 件（{patterns} パターン）、"
        "その他の理由 {failed} 件（{reasons} 種類の理由）。",
        "all_processed": "すべて処理済みです。キューにメールはありません。",
        "unclassified_heading": "*未分類のメール*（どのルールにも一致しません）",
        "failed_heading": "*その他の理由でキューに入ったメール*（配信失敗、不明なアカウント、キュー行きのルール）",
        "unclassified_none": "未分類のメール: すべて処理済みです。",
        "failed_none": "その他の理由: すべて処理済みです。",
        "pattern_line": "*{count} 件* · {accounts} アカウント · {sender}",
        "reason_line": "*{count} 件* · {accounts} アカウント",
        "seen": "最初 {first} · 最後 {last}",
        "sample": "例:「{subject}」",
        "see_mails": "パターン `{id}` · メール一覧: `/rootmail list {id}`",
        "more_patterns": "ほか {more} パターン: `rootmail digest` ですべて表示します。",
        "create_rule": "ルールを作成",
        "retry_these": "再実行",
        "no_sender": "（送信者なし）",
        "help": "*/rootmail* — 再実行を待つメールのキュー\n"
        "• `/rootmail list [PATTERN] [PAGE]` — キュー内のメール（新しい順）\n"
        "• `/rootmail show ID` — 1 件のメール: 送信者、アカウント、キューに入った理由\n"
        "• `/rootmail retry` — キュー内のすべてのメールを現在のルールで再実行\n"
        "• `/rootmail retry ID…` — 指定したメールを再実行\n"
        "• `/rootmail retry pattern P` — ダイジェストの 1 パターンを再実行\n"
        "再実行の結果は完了後にここへ投稿します。",
        "list_title": "キュー内のメール{scope}（{page}/{pages} ページ、全 {total} 件）",
        "list_scope": "（パターン `{pattern}`）",
        "list_empty": "キューにメールはありません{scope}。",
        "list_next": "次のページ: `/rootmail list {args}`",
        "list_line": "`{id}` · {at} · {sender}\n{subject}\n_{reason}_",
        "show_missing": "台帳にメール `{id}` はありません。",
        "show": "*{subject}*\n送信者 {sender} · 受信 {at}\n状態 *{state}*{reason}\n"
        "カテゴリ {category} · アクション {action} · アカウント {accounts}\nID `{id}` · 試行 {attempts} 回",
        "show_reason": " — {reason}",
        "retry_started": "{who} が {what} の再実行を依頼しました。現在のルールで再実行中です。結果はここに投稿します。",
        "retry_all": "キュー内のすべてのメール",
        "retry_ids": "{count} 件のメール",
        "retry_pattern": "パターン `{pattern}`",
        "retry_outcome": "*{what} の再実行が完了しました*（{who}）: {total} 件を再実行。",
        "retry_nothing": "*{what} の再実行*（{who}）: 再実行するメールはありません。{skipped}",
        "retry_counts": "転送 {forwarded} · チケット {ticketed} · 緊急 {escalated} · 制限 {restricted} · "
        "隔離 {quarantined} · 無視 {ignored} · *キューに残り {queued}*",
        "retry_unfinished": "{count} 件は待機終了時にまだ実行中でした: 後で `/rootmail show ID` で確認してください。",
        "retry_why": "キューに残った理由:",
        "retry_skipped": "スキップ: {skipped}。",
        "retry_remaining": "キューにあと {count} 件あります: もう一度再実行してください。",
        "refused": "拒否しました: {reason}",
        "modal_title": "パターンからルール作成",
        "modal_submit": "保存",
        "modal_close": "キャンセル",
        "modal_intro": "パターン `{id}` のキュー内メール {count} 件。例:「{subject}」",
        "field_id": "ルール ID",
        "field_description": "説明（このルールの目的）",
        "field_category": "カテゴリ",
        "field_action": "アクション",
        "field_sender": "送信者アドレス",
        "field_subject": "件名のパターン（正規表現）",
        "field_priority": "優先度（0〜1000、同順位なら大きい方が優先）",
        "rule_saved": "{who} がルール `{rule}` を保存しました: {category} → {action}。パターン `{pattern}` の"
        "キュー内メール {count} 件をこのルールで再実行できます。",
        "rule_exists": "この ID のルールはすでにあります。別の ID を指定してください。",
        "rule_preview": "プレビュー: 確認した {sampled} 件のうち {taken} 件に一致し、再実行すると {actions} になります。",
        "suggested": "推奨カテゴリ: *{category}*（{why}）。判断するのは人です。自動では適用しません。",
        "suggested_short": "推奨: *{category}*（{why}）",
        "signal_words": "緊急の語: {words}。このメールに一致するルールはありません。ルールができるまでキューで待ちます。",
        "alerted": "{count} 件は緊急の語のため即時に通知済み（{words}）",
        "digest_alerted": "うち {count} 件は緊急の語のため運用者に即時通知しました。",
    },
}


def texts(language: str) -> dict[str, str]:
    return _TEXTS.get(language, _TEXTS["en"])
