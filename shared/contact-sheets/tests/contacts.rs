//! Reading contact sheets: every rule, on small CSV texts and on XLSX
//! workbooks built here, and malformed input of every kind.

use std::io::Write as _;

use contact_sheets::{read_contacts, Import, Rejected, SheetError, SheetKind, SheetOptions};
use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook, Worksheet};

fn opts(country: &str) -> SheetOptions {
    SheetOptions {
        default_country: country.into(),
        ..SheetOptions::default()
    }
}

fn csv(text: &str, opts: &SheetOptions) -> Result<Import, SheetError> {
    read_contacts(text.as_bytes(), SheetKind::Csv, opts)
}

fn csv_ok(text: &str, country: &str) -> Import {
    csv(text, &opts(country)).expect("an import")
}

fn phones(import: &Import) -> Vec<(usize, &str)> {
    import
        .contacts
        .iter()
        .map(|c| (c.row, c.phone.as_str()))
        .collect()
}

fn rejected(import: &Import) -> Vec<(usize, &str)> {
    import
        .rejected
        .iter()
        .map(|r| (r.row, r.reason.as_str()))
        .collect()
}

// ---------------------------------------------------------------- CSV

#[test]
fn a_plain_csv() {
    let import = csv_ok(
        "Teléfono,Nombre,Zona horaria,Idioma,Monto,Vence\n\
         11 5555-1234,María Pérez,America/Argentina/Buenos_Aires,es-AR,1500,2024-07-01\n\
         +52 55 1234 5678,Juan,America/Mexico_City,Español,,\n",
        "AR",
    );
    assert_eq!(
        import.columns,
        [
            "Teléfono",
            "Nombre",
            "Zona horaria",
            "Idioma",
            "Monto",
            "Vence"
        ]
    );
    assert_eq!(phones(&import), [(2, "541155551234"), (3, "525512345678")]);
    assert!(import.rejected.is_empty());
    let maria = &import.contacts[0];
    assert_eq!(maria.phone.e164().as_deref(), Some("+541155551234"));
    assert_eq!(maria.name.as_deref(), Some("María Pérez"));
    assert_eq!(
        maria.time_zone.as_deref(),
        Some("America/Argentina/Buenos_Aires")
    );
    assert_eq!(maria.language.as_deref(), Some("es"));
    assert_eq!(
        maria.variables.iter().collect::<Vec<_>>(),
        [
            (&"Monto".to_string(), &"1500".to_string()),
            (&"Vence".to_string(), &"2024-07-01".to_string())
        ]
    );
    let juan = &import.contacts[1];
    assert_eq!(juan.language.as_deref(), Some("es"));
    assert!(juan.variables.is_empty(), "empty cells are absent");
}

#[test]
fn optional_columns_absent() {
    let import = csv_ok("phone\n2015550123\n", "US");
    let c = &import.contacts[0];
    assert_eq!(c.phone.as_str(), "12015550123");
    assert_eq!(
        (c.name.as_ref(), c.time_zone.as_ref(), c.language.as_ref()),
        (None, None, None)
    );
    assert!(c.variables.is_empty());
}

#[test]
fn title_rows_above_the_header_are_skipped_and_counted() {
    let import = csv_ok(
        "ACME Cobranzas S.A.,,\n\
         Campaña julio 2024,,\n\
         ,,\n\
         Celular,Cliente,Deuda\n\
         \n\
         11 5555 1234,Ana,100\n",
        "AR",
    );
    assert_eq!(import.columns, ["Celular", "Cliente", "Deuda"]);
    assert_eq!(phones(&import), [(6, "541155551234")]);
    assert_eq!(import.contacts[0].name.as_deref(), Some("Ana"));
}

#[test]
fn no_phone_column() {
    assert_eq!(
        csv("Nombre,Monto\nAna,100\nLuis,200\n", &opts("AR")).map(|_| ()),
        Err(SheetError::NoPhoneColumn { looked_at: 3 })
    );
    // The header is looked for in the first 20 rows only.
    let late = format!("{}phone\n2015550123\n", "title\n".repeat(20));
    assert_eq!(
        csv(&late, &opts("US")).map(|_| ()),
        Err(SheetError::NoPhoneColumn { looked_at: 20 })
    );
    let just_in = format!("{}phone\n2015550123\n", "title\n".repeat(19));
    assert_eq!(phones(&csv_ok(&just_in, "US")), [(21, "12015550123")]);
}

#[test]
fn empty_files() {
    for text in ["", "\u{feff}", "\n\n\r\n", " , ,\n,,\n", "\u{feff}\r\n"] {
        assert_eq!(
            csv(text, &opts("US")).map(|_| ()),
            Err(SheetError::Empty),
            "{text:?}"
        );
    }
}

#[test]
fn only_a_header() {
    let import = csv_ok("phone,name,amount\n", "US");
    assert!(import.contacts.is_empty() && import.rejected.is_empty());
    assert_eq!(import.columns, ["phone", "name", "amount"]);
}

#[test]
fn bom_semicolons_crlf_and_quoted_line_breaks() {
    let text = "\u{feff}Teléfono;Nombre;Dirección;Monto\r\n\
                11 5555-1234;\"Pérez; María\";\"Av. Corrientes 1234\r\nPiso 5\";1.500,50\r\n\
                \r\n\
                11 5555-4321;Luis;;\r\n";
    let import = csv_ok(text, "AR");
    assert_eq!(import.columns, ["Teléfono", "Nombre", "Dirección", "Monto"]);
    assert_eq!(phones(&import), [(2, "541155551234"), (4, "541155554321")]);
    let maria = &import.contacts[0];
    assert_eq!(maria.name.as_deref(), Some("Pérez; María"));
    assert_eq!(
        maria.variables["Dirección"],
        "Av. Corrientes 1234\r\nPiso 5"
    );
    assert_eq!(maria.variables["Monto"], "1.500,50");
}

#[test]
fn comma_csv_with_semicolons_in_text_and_tab_separated() {
    let import = csv_ok("phone,note\n2015550123,\"a;b;c\"\n", "US");
    assert_eq!(import.columns, ["phone", "note"]);
    assert_eq!(import.contacts[0].variables["note"], "a;b;c");
    let import = csv_ok("phone\tname\n2015550123\tAna\n", "US");
    assert_eq!(import.contacts[0].name.as_deref(), Some("Ana"));
}

#[test]
fn bad_numbers_are_rejected_quoted() {
    let import = csv_ok(
        "phone,name\n\
         11 5555,a\n\
         call me,b\n\
         1234567890123456789012345678901234567890,c\n\
         ,d\n\
         11 5555-1234,e\n",
        "AR",
    );
    assert_eq!(
        rejected(&import),
        [
            (2, "bad number: \"11 5555\""),
            (3, "bad number: \"call me\""),
            (4, "bad number: \"12345678901234567890123456789…\""),
            (5, "missing phone number"),
        ]
    );
    assert_eq!(phones(&import), [(6, "541155551234")]);
}

#[test]
fn every_way_of_writing_a_number() {
    let import = csv_ok(
        "phone\n\
         11 5555-0001\n\
         (011) 15 5555-0002\n\
         011.15.5555.0003\n\
         +54 9 11 5555-0004\n\
         0054 9 11 5555 0005\n\
         5491155550006\n\
         +1 (201) 555-0123\n",
        "AR",
    );
    assert!(import.rejected.is_empty(), "{:?}", import.rejected);
    assert_eq!(
        phones(&import),
        [
            (2, "541155550001"),
            (3, "5491155550002"),
            (4, "5491155550003"),
            (5, "5491155550004"),
            (6, "5491155550005"),
            (7, "5491155550006"),
            (8, "12015550123"),
        ]
    );
}

#[test]
fn duplicates_point_at_the_first_row() {
    let import = csv_ok(
        "phone,name\n\
         +54 9 11 5555-1234,a\n\
         (011) 15 5555-1234,b\n\
         2015550123,c\n\
         5491155551234,d\n",
        "AR",
    );
    assert_eq!(phones(&import), [(2, "5491155551234")]);
    assert_eq!(
        rejected(&import),
        [
            (3, "duplicate of row 2"),
            (4, "bad number: \"2015550123\""),
            (5, "duplicate of row 2"),
        ]
    );
}

#[test]
fn time_zones() {
    let import = csv_ok(
        "phone,tz\n\
         2015550101,America/New_York\n\
         2015550102,america/los_angeles\n\
         2015550103,Mars/Base\n\
         2015550104,\n\
         2015550105,UTC\n\
         2015550106,GMT-3\n",
        "US",
    );
    let zones: Vec<_> = import
        .contacts
        .iter()
        .map(|c| (c.row, c.time_zone.as_deref()))
        .collect();
    assert_eq!(
        zones,
        [
            (2, Some("America/New_York")),
            (3, Some("America/Los_Angeles")),
            (5, None),
            (6, Some("UTC")),
        ]
    );
    assert_eq!(
        rejected(&import),
        [
            (4, "unknown time zone: \"Mars/Base\""),
            (7, "unknown time zone: \"GMT-3\"")
        ]
    );
}

#[test]
fn languages() {
    let import = csv_ok(
        "phone,language\n\
         2015550101,es\n\
         2015550102,pt_BR\n\
         2015550103,English\n\
         2015550104,Português\n\
         2015550105,klingon\n\
         2015550106,\n",
        "US",
    );
    let langs: Vec<_> = import
        .contacts
        .iter()
        .map(|c| c.language.as_deref())
        .collect();
    assert_eq!(
        langs,
        [Some("es"), Some("pt"), Some("en"), Some("pt"), None]
    );
    assert_eq!(rejected(&import), [(6, "unknown language: \"klingon\"")]);
}

#[test]
fn required_variables() {
    let text = "phone,Nombre,Monto,Vencimiento\n\
                2015550101,Ana,100,2024-07-01\n\
                2015550102,Luis,,2024-07-01\n\
                2015550103,,300,2024-07-01\n";
    let mut o = opts("US");
    o.required = vec!["monto".into(), " VENCIMIENTO ".into()];
    let import = csv(text, &o).expect("an import");
    assert_eq!(phones(&import), [(2, "12015550101"), (4, "12015550103")]);
    assert_eq!(rejected(&import), [(3, "missing required variable: Monto")]);

    // A required name (the template greets by name) is checked too.
    o.required = vec!["nombre".into()];
    let import = csv(text, &o).expect("an import");
    assert_eq!(
        rejected(&import),
        [(4, "missing required variable: Nombre")]
    );

    o.required = vec!["amount".into()];
    assert_eq!(
        csv(text, &o).map(|_| ()),
        Err(SheetError::MissingColumn("amount".into()))
    );
    assert!(SheetError::MissingColumn("amount".into())
        .to_string()
        .contains("\"amount\" column"));
}

#[test]
fn first_problem_wins_in_the_stated_order() {
    let mut o = opts("US");
    o.required = vec!["amount".into()];
    let import = csv(
        "phone,tz,lang,amount\n\
         2015550101,America/Chicago,en,1\n\
         555,Mars/Base,klingon,\n\
         2015550101,Mars/Base,klingon,\n\
         2015550102,Mars/Base,klingon,\n\
         2015550103,America/Chicago,klingon,\n\
         2015550104,America/Chicago,en,\n",
        &o,
    )
    .expect("an import");
    assert_eq!(
        rejected(&import),
        [
            (3, "bad number: \"555\""),
            (4, "duplicate of row 2"),
            (5, "unknown time zone: \"Mars/Base\""),
            (6, "unknown language: \"klingon\""),
            (7, "missing required variable: amount"),
        ]
    );
}

#[test]
fn a_rejected_rows_number_still_counts_for_duplicates() {
    let import = csv_ok("phone,tz\n2015550101,Mars/Base\n2015550101,UTC\n", "US");
    assert_eq!(
        rejected(&import),
        [
            (2, "unknown time zone: \"Mars/Base\""),
            (3, "duplicate of row 2")
        ]
    );
}

#[test]
fn empty_rows_are_skipped_silently() {
    let import = csv_ok(
        "phone,name\n\n,\n  ,  \n2015550101,a\n\n\n2015550102,b\n,\n",
        "US",
    );
    assert_eq!(phones(&import), [(5, "12015550101"), (8, "12015550102")]);
    assert!(import.rejected.is_empty());
}

#[test]
fn cells_under_no_header_are_ignored() {
    let import = csv_ok("phone,,amount\n2015550101,note,5\n,only a note,\n", "US");
    assert_eq!(import.columns, ["phone", "amount"]);
    let c = &import.contacts[0];
    assert_eq!(c.variables.len(), 1);
    assert_eq!(c.variables["amount"], "5");
    assert!(
        import.rejected.is_empty(),
        "a row with only a margin note is empty"
    );
}

#[test]
fn duplicate_headers_get_a_suffix() {
    let import = csv_ok("phone,amount,Amount,amount\n2015550101,1,2,3\n", "US");
    assert_eq!(import.columns, ["phone", "amount", "Amount", "amount (2)"]);
    let vars = &import.contacts[0].variables;
    assert_eq!(
        (
            vars["amount"].as_str(),
            vars["Amount"].as_str(),
            vars["amount (2)"].as_str()
        ),
        ("1", "2", "3")
    );
}

#[test]
fn headers_and_cells_are_trimmed() {
    let import = csv_ok(" phone , Monto  \n 2015550101 ,  12 \n", "US");
    assert_eq!(import.columns, ["phone", "Monto"]);
    assert_eq!(import.contacts[0].variables["Monto"], "12");
}

#[test]
fn rows_longer_or_shorter_than_the_header() {
    let import = csv_ok("phone,a,b\n2015550101\n2015550102,1,2,3,4\n", "US");
    assert_eq!(phones(&import), [(2, "12015550101"), (3, "12015550102")]);
    assert_eq!(import.contacts[1].variables.len(), 2);
}

#[test]
fn size_limit_before_parsing() {
    let mut o = opts("US");
    o.max_bytes = 10;
    assert_eq!(
        csv("phone\n2015550101\n", &o).map(|_| ()),
        Err(SheetError::TooLarge { limit: 10 })
    );
    // Checked before anything else: even garbage is "too large".
    assert_eq!(
        read_contacts(&[0xff; 11], SheetKind::Xlsx, &o).map(|_| ()),
        Err(SheetError::TooLarge { limit: 10 })
    );
    o.max_bytes = 17;
    assert!(
        csv("phone\n2015550101\n", &o).is_ok(),
        "the limit itself is allowed"
    );
}

#[test]
fn row_limit() {
    let mut o = opts("US");
    o.max_rows = 2;
    let two = "phone\n2015550101\n\n\n2015550102\n";
    assert_eq!(
        csv(two, &o).map(|i| i.contacts.len()),
        Ok(2),
        "blank rows do not count"
    );
    let three = "phone\n2015550101\nbad\n2015550102\n";
    assert_eq!(
        csv(three, &o).map(|_| ()),
        Err(SheetError::TooManyRows { limit: 2 }),
        "rejected rows count"
    );
}

#[test]
fn unknown_default_country() {
    assert_eq!(
        csv("phone\n1\n", &opts("Argentina")).map(|_| ()),
        Err(SheetError::UnknownCountry("ARGENTINA".into()))
    );
    assert!(
        csv("phone\n\n", &opts("ar")).is_ok(),
        "case does not matter"
    );
}

#[test]
fn not_utf8_text() {
    // "Teléfono" as Excel's plain "CSV" writes it on Windows (cp1252).
    let latin1 = b"Tel\xe9fono,Nombre\n11 5555 1234,Jos\xe9\n";
    match read_contacts(latin1, SheetKind::Csv, &opts("AR")) {
        Err(SheetError::NotASpreadsheet(why)) => assert!(why.contains("CSV UTF-8"), "{why}"),
        other => panic!("{other:?}"),
    }
    let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n";
    match read_contacts(pdf, SheetKind::Csv, &opts("AR")) {
        Err(SheetError::NotASpreadsheet(why)) => assert!(why.contains(".pdf"), "{why}"),
        other => panic!("{other:?}"),
    }
}

// --------------------------------------------------------------- XLSX

fn xlsx(build: impl FnOnce(&mut Workbook)) -> Vec<u8> {
    let mut workbook = Workbook::new();
    build(&mut workbook);
    workbook.save_to_buffer().expect("an xlsx")
}

fn write_row(sheet: &mut Worksheet, row: u32, cells: &[&str]) {
    for (c, text) in cells.iter().enumerate() {
        if !text.is_empty() {
            sheet.write_string(row, c as u16, *text).expect("a cell");
        }
    }
}

/// An operator's workbook: a merged title across the top, a blank row, the
/// header in row 3, numbers written every way, one typed as a number.
fn campaign_workbook() -> Vec<u8> {
    xlsx(|wb| {
        let sheet = wb.add_worksheet();
        sheet.set_name("Contactos").expect("name");
        let title = Format::new().set_bold();
        sheet
            .merge_range(0, 0, 0, 5, "Campaña de cobranzas — julio", &title)
            .expect("merge");
        write_row(
            sheet,
            2,
            &[
                "Celular",
                "Nombre",
                "Zona horaria",
                "Idioma",
                "Monto",
                "Vence",
            ],
        );
        write_row(
            sheet,
            3,
            &[
                "11 5555-0001",
                "Ana",
                "America/Argentina/Buenos_Aires",
                "es",
                "100",
                "",
            ],
        );
        // Row 5: the phone typed as a number, a numeric amount, a date.
        sheet.write_number(4, 0, 5491155550002.0).expect("n");
        write_row(sheet, 4, &["", "Luis", "America/Mexico_City", "", ""]);
        sheet.write_number(4, 4, 1500.5).expect("n");
        let date = Format::new().set_num_format("yyyy-mm-dd");
        let due = ExcelDateTime::from_ymd(2024, 7, 1).expect("date");
        sheet
            .write_datetime_with_format(4, 5, &due, &date)
            .expect("d");
        // Row 6 empty; row 7 a duplicate of row 5 written another way.
        write_row(sheet, 6, &["+54 9 11 5555-0002", "Luis bis", "", "", "1"]);
        write_row(
            sheet,
            7,
            &["(011) 15-5555-0003", "Eva", "Mars/Base", "", "1"],
        );
        write_row(sheet, 8, &["11 5555", "Bad", "", "", "1"]);
        write_row(
            sheet,
            9,
            &["11.5555.0004", "Sin monto", "Europe/Madrid", "pt-BR", ""],
        );
        write_row(sheet, 10, &["", "", "", "", ""]);
        write_row(
            sheet,
            11,
            &["0054 9 11 5555 0005", "Última", "", "English", "7"],
        );

        let other = wb.add_worksheet();
        other.set_name("Notas").expect("name");
        write_row(other, 0, &["Teléfono", "Nota"]);
        write_row(other, 1, &["11 5555-9999", "not a contact"]);
    })
}

#[test]
fn an_operators_workbook() {
    let mut o = opts("AR");
    o.required = vec!["monto".into()];
    let import = read_contacts(&campaign_workbook(), SheetKind::Xlsx, &o).expect("an import");
    assert_eq!(
        import.columns,
        [
            "Celular",
            "Nombre",
            "Zona horaria",
            "Idioma",
            "Monto",
            "Vence"
        ]
    );
    assert_eq!(
        phones(&import),
        [
            (4, "541155550001"),
            (5, "5491155550002"),
            (12, "5491155550005")
        ]
    );
    assert_eq!(
        rejected(&import),
        [
            (7, "duplicate of row 5"),
            (8, "unknown time zone: \"Mars/Base\""),
            (9, "bad number: \"11 5555\""),
            (10, "missing required variable: Monto"),
        ]
    );
    let luis = &import.contacts[1];
    assert_eq!(luis.name.as_deref(), Some("Luis"));
    assert_eq!(luis.time_zone.as_deref(), Some("America/Mexico_City"));
    assert_eq!(luis.variables["Monto"], "1500.5");
    assert_eq!(luis.variables["Vence"], "2024-07-01");
    let ultima = &import.contacts[2];
    assert_eq!(ultima.language.as_deref(), Some("en"));
    assert_eq!(ultima.variables["Monto"], "7");
    assert!(
        import
            .contacts
            .iter()
            .all(|c| c.phone.as_str() != "541155559999"),
        "the second sheet is not read"
    );
}

#[test]
fn xlsx_cell_types_as_text() {
    let bytes = xlsx(|wb| {
        let sheet = wb.add_worksheet();
        write_row(
            sheet,
            0,
            &[
                "phone", "int", "float", "big", "bool", "when", "time", "error", "formula",
            ],
        );
        sheet.write_number(1, 0, 12015550101.0).expect("n");
        sheet.write_number(1, 1, 42.0).expect("n");
        sheet.write_number(1, 2, -0.25).expect("n");
        sheet.write_number(1, 3, 1e20).expect("n");
        sheet.write_boolean(1, 4, true).expect("b");
        let stamp = Format::new().set_num_format("yyyy-mm-dd hh:mm");
        let when = ExcelDateTime::from_ymd(2024, 6, 19)
            .and_then(|d| d.and_hms(15, 30, 0))
            .expect("dt");
        sheet
            .write_datetime_with_format(1, 5, &when, &stamp)
            .expect("dt");
        let clock = Format::new().set_num_format("hh:mm:ss");
        let time = ExcelDateTime::from_hms(8, 5, 9).expect("t");
        sheet
            .write_datetime_with_format(1, 6, &time, &clock)
            .expect("t");
        sheet
            .write_formula(1, 7, Formula::new("=1/0").set_result("#DIV/0!"))
            .expect("f");
        sheet
            .write_formula(1, 8, Formula::new("=\"a\"&\"b\"").set_result("ab"))
            .expect("f");
    });
    let import = read_contacts(&bytes, SheetKind::Xlsx, &opts("US")).expect("an import");
    assert!(import.rejected.is_empty(), "{:?}", import.rejected);
    let c = &import.contacts[0];
    assert_eq!(c.phone.as_str(), "12015550101");
    let vars: Vec<(&str, &str)> = c
        .variables
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        vars,
        [
            ("big", "100000000000000000000"),
            ("bool", "TRUE"),
            ("float", "-0.25"),
            ("formula", "ab"),
            ("int", "42"),
            ("time", "08:05:09"),
            ("when", "2024-06-19 15:30:00"),
        ],
        "an error cell is empty"
    );
}

#[test]
fn xlsx_first_visible_worksheet_and_empty_workbooks() {
    let bytes = xlsx(|wb| {
        let hidden = wb.add_worksheet();
        write_row(hidden, 0, &["phone"]);
        write_row(hidden, 1, &["2015550101"]);
        hidden.set_hidden(true);
        let shown = wb.add_worksheet();
        write_row(shown, 0, &["phone"]);
        write_row(shown, 1, &["2015550102"]);
        shown.set_active(true);
    });
    let import = read_contacts(&bytes, SheetKind::Xlsx, &opts("US")).expect("an import");
    assert_eq!(phones(&import), [(2, "12015550102")]);

    let empty = xlsx(|wb| {
        wb.add_worksheet();
    });
    assert_eq!(
        read_contacts(&empty, SheetKind::Xlsx, &opts("US")).map(|_| ()),
        Err(SheetError::Empty)
    );
    let only_header = xlsx(|wb| write_row(wb.add_worksheet(), 0, &["Teléfono", "Nombre"]));
    let import = read_contacts(&only_header, SheetKind::Xlsx, &opts("US")).expect("an import");
    assert!(import.contacts.is_empty() && import.rejected.is_empty());
    let no_phone = xlsx(|wb| write_row(wb.add_worksheet(), 4, &["Nombre", "Monto"]));
    assert_eq!(
        read_contacts(&no_phone, SheetKind::Xlsx, &opts("US")).map(|_| ()),
        Err(SheetError::NoPhoneColumn { looked_at: 5 })
    );
}

#[test]
fn xlsx_row_limit_stops_early() {
    let bytes = xlsx(|wb| {
        let sheet = wb.add_worksheet();
        write_row(sheet, 0, &["phone"]);
        for r in 1..=50u32 {
            sheet
                .write_number(r, 0, 12015550100.0 + f64::from(r))
                .expect("n");
        }
    });
    let mut o = opts("US");
    o.max_rows = 49;
    assert_eq!(
        read_contacts(&bytes, SheetKind::Xlsx, &o).map(|_| ()),
        Err(SheetError::TooManyRows { limit: 49 })
    );
    o.max_rows = 50;
    assert_eq!(
        read_contacts(&bytes, SheetKind::Xlsx, &o).map(|i| i.contacts.len()),
        Ok(50)
    );
}

// ---------------------------------------------------------- malformed

fn not_a_spreadsheet(bytes: &[u8], kind: SheetKind) -> String {
    match read_contacts(bytes, kind, &opts("US")) {
        Err(SheetError::NotASpreadsheet(why)) => why,
        other => panic!("{other:?}"),
    }
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in files {
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file(*name, stored).expect("start");
        zip.write_all(content).expect("write");
    }
    zip.finish().expect("finish").into_inner()
}

#[test]
fn files_that_are_not_spreadsheets() {
    let good = campaign_workbook();
    let truncated = &good[..good.len() / 2];
    assert!(not_a_spreadsheet(truncated, SheetKind::Xlsx).contains("could not be opened"));
    let plain_zip = zip_of(&[("readme.txt", b"hello")]);
    not_a_spreadsheet(&plain_zip, SheetKind::Xlsx);
    let ods = zip_of(&[
        (
            "mimetype",
            b"application/vnd.oasis.opendocument.spreadsheet",
        ),
        ("content.xml", b"<office:document-content/>"),
    ]);
    not_a_spreadsheet(&ods, SheetKind::Xlsx);
    let broken_sheet = zip_of(&[
        ("[Content_Types].xml", b"<Types/>"),
        (
            "_rels/.rels",
            br#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        (
            "xl/workbook.xml",
            b"<workbook><sheets><sheet name=\"S\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>",
        ),
        ("xl/worksheets/sheet1.xml", b"<worksheet><sheetData><row><c r=\"A1\" t=\"s\"><v>9"),
    ]);
    not_a_spreadsheet(&broken_sheet, SheetKind::Xlsx);
    assert!(not_a_spreadsheet(b"%PDF-1.7\n", SheetKind::Xlsx).contains(".pdf"));
    assert!(not_a_spreadsheet(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", SheetKind::Xlsx).contains(".png"));
    let xls = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0\0\0\0\0\0\0";
    assert!(not_a_spreadsheet(xls, SheetKind::Xlsx).contains("97-2003"));
    assert!(not_a_spreadsheet(b"phone\n2015550101\n", SheetKind::Xlsx).contains(".csv"));
    assert!(not_a_spreadsheet(&good, SheetKind::Csv).contains("not CSV text"));
    assert_eq!(
        read_contacts(b"", SheetKind::Xlsx, &opts("US")).map(|_| ()),
        Err(SheetError::Empty)
    );
}

/// The smallest workbook calamine opens, with this worksheet XML.
fn workbook_with_sheet(sheet_xml: &str) -> Vec<u8> {
    zip_of(&[
        (
            "[Content_Types].xml",
            b"<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>",
        ),
        (
            "_rels/.rels",
            br#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        (
            "xl/workbook.xml",
            br#"<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
        (
            "xl/_rels/workbook.xml.rels",
            br#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
        ),
        ("xl/worksheets/sheet1.xml", sheet_xml.as_bytes()),
    ])
}

fn sheet_xml(rows: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{rows}</sheetData></worksheet>"#
    )
}

#[test]
fn a_minimal_workbook_reads() {
    let bytes = workbook_with_sheet(&sheet_xml(
        r#"<row r="1"><c r="A1" t="inlineStr"><is><t>phone</t></is></c></row><row r="2"><c r="A2"><v>12015550101</v></c></row>"#,
    ));
    let import = read_contacts(&bytes, SheetKind::Xlsx, &opts("US")).expect("an import");
    assert_eq!(phones(&import), [(2, "12015550101")]);
}

#[test]
fn forged_cell_references_do_not_panic() {
    for reference in [
        "AAAAAAAAAAAAAAAA1",
        "A99999999999",
        "ZZZZZZZ1",
        "XFE1",
        "A0",
    ] {
        let bytes = workbook_with_sheet(&sheet_xml(&format!(
            r#"<row r="1"><c r="A1" t="inlineStr"><is><t>phone</t></is></c><c r="{reference}" t="inlineStr"><is><t>x</t></is></c></row><row r="2"><c r="A2"><v>12015550101</v></c></row>"#
        )));
        match read_contacts(&bytes, SheetKind::Xlsx, &opts("US")) {
            Ok(import) => assert_eq!(import.columns, ["phone"], "{reference}"),
            Err(SheetError::NotASpreadsheet(_)) => {}
            Err(e) => panic!("{reference}: {e:?}"),
        }
    }
}

#[test]
fn rejected_reasons_are_one_per_row_in_row_order() {
    let import = csv_ok("phone\nx\n2015550101\ny\n2015550101\nz\n", "US");
    let rows: Vec<usize> = import.rejected.iter().map(|r: &Rejected| r.row).collect();
    assert_eq!(rows, [2, 4, 5, 6]);
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            for kind in [SheetKind::Csv, SheetKind::Xlsx] {
                let _ = read_contacts(&bytes, kind, &opts("AR"));
            }
            let _ = SheetKind::sniff(&bytes);
        }

        #[test]
        fn on_csv_like_text(text in "[a-z0-9+()\\-. ,;\t\"\r\n\u{feff}áñ]{0,300}") {
            let with_header = format!("phone;name,tz\n{text}");
            for t in [text.as_str(), with_header.as_str()] {
                if let Ok(import) = read_contacts(t.as_bytes(), SheetKind::Csv, &opts("AR")) {
                    let rows: Vec<usize> = import.contacts.iter().map(|c| c.row)
                        .chain(import.rejected.iter().map(|r| r.row)).collect();
                    prop_assert!(rows.iter().all(|&r| r >= 2));
                }
            }
        }

        #[test]
        fn on_phone_like_cells(cell in "[0-9+()\\-. /]{0,40}") {
            let text = format!("phone\n\"{cell}\"\n");
            let import = read_contacts(text.as_bytes(), SheetKind::Csv, &opts("BR"));
            prop_assert!(import.is_ok());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn on_damaged_workbooks(
            cut in 0.0f64..1.0,
            flips in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 0..8),
        ) {
            let mut bytes = campaign_workbook();
            for (at, byte) in flips {
                let i = (at * bytes.len() as f64) as usize;
                if let Some(b) = bytes.get_mut(i) {
                    *b = byte;
                }
            }
            bytes.truncate(((1.0 - cut / 4.0) * bytes.len() as f64) as usize);
            let _ = read_contacts(&bytes, SheetKind::Xlsx, &opts("AR"));
        }
    }
}
