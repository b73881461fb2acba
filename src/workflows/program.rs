//! A definition's actions as a flat list of instructions, so a run's position is one number
//! (`workflow_runs.pc`) that survives restarts: a branch becomes a test that jumps to its
//! `else` arm, and the end of a `then` arm jumps past the `else` arm.

use super::definition::{Action, Condition};

#[derive(Debug, Clone, PartialEq)]
pub enum Instruction<'a> {
    /// Run an action (never a branch).
    Do {
        path: String,
        action: &'a Action,
    },
    /// Go on when the conditions hold, else jump to `otherwise`.
    Test {
        path: String,
        conditions: &'a Condition,
        otherwise: usize,
    },
    Jump {
        to: usize,
    },
}

pub fn compile(actions: &[Action]) -> Vec<Instruction<'_>> {
    let mut program = Vec::new();
    emit(actions, "actions", &mut program);
    program
}

fn emit<'a>(actions: &'a [Action], path: &str, program: &mut Vec<Instruction<'a>>) {
    for (i, action) in actions.iter().enumerate() {
        let here = format!("{path}[{i}]");
        match action {
            Action::Branch {
                conditions,
                then,
                otherwise,
            } => {
                let test = program.len();
                program.push(Instruction::Test {
                    path: here.clone(),
                    conditions,
                    otherwise: 0,
                });
                emit(then, &format!("{here}.then"), program);
                let jump = program.len();
                program.push(Instruction::Jump { to: 0 });
                let else_start = program.len();
                emit(otherwise, &format!("{here}.else"), program);
                let end = program.len();
                if let Instruction::Test { otherwise, .. } = &mut program[test] {
                    *otherwise = else_start;
                }
                program[jump] = Instruction::Jump { to: end };
            }
            action => program.push(Instruction::Do { path: here, action }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::definition::Definition;
    use super::*;
    use serde_json::json;

    #[test]
    fn branches_become_tests_and_jumps() {
        let definition = Definition::parse(
            "lead",
            &json!({"type": "manual"}),
            None,
            &json!([
                {"type": "wait", "duration": "1h"},
                {"type": "branch", "conditions": {"field": "state", "operator": "equals", "value": "CA"},
                 "then": [{"type": "update_field", "field": "priority", "value": "high"}],
                 "else": [{"type": "update_field", "field": "priority", "value": "low"},
                          {"type": "wait", "duration": "1d"}]},
                {"type": "update_field", "field": "status", "value": "contacted"}
            ]),
        )
        .unwrap();
        let program = compile(&definition.actions);
        let shape: Vec<String> = program
            .iter()
            .map(|i| match i {
                Instruction::Do { path, .. } => format!("do {path}"),
                Instruction::Test { otherwise, .. } => format!("test else {otherwise}"),
                Instruction::Jump { to } => format!("jump {to}"),
            })
            .collect();
        assert_eq!(
            shape,
            [
                "do actions[0]",
                "test else 4",
                "do actions[1].then[0]",
                "jump 6",
                "do actions[1].else[0]",
                "do actions[1].else[1]",
                "do actions[2]",
            ]
        );
    }
}
