//! Writing report tables, and reading them back.

use calamine::{Data, Reader, Xlsx};
use contact_sheets::{
    read_contacts, write_csv, write_xlsx, Cell, SheetError, SheetKind, SheetOptions, Table,
};

fn report() -> Table {
    let at: jiff::Timestamp = "2024-06-19T15:22:45Z".parse().expect("ts");
    Table {
        headers: vec![
            "Teléfono".into(),
            "Nombre".into(),
            "Zona horaria".into(),
            "Monto".into(),
            "Llamado".into(),
            "Nota".into(),
        ],
        rows: vec![
            vec![
                "+54 9 11 5555-0001".into(),
                "María, \"la jefa\"".into(),
                "America/Argentina/Buenos_Aires".into(),
                Cell::Number(1500.5),
                Cell::Time(at),
                "dos\nlíneas".into(),
            ],
            vec![
                "+52 55 1234 5678".into(),
                "José Ñúñez".into(),
                Cell::Empty,
                Cell::Number(-3.0),
                Cell::Empty,
                Cell::from(None::<String>),
            ],
            vec!["+1 201 555 0123".into(), "Short row".into()],
        ],
    }
}

fn opts() -> SheetOptions {
    SheetOptions {
        default_country: "AR".into(),
        ..SheetOptions::default()
    }
}

#[test]
fn xlsx_round_trip() {
    let table = report();
    let bytes = write_xlsx(&table, "Resultados").expect("an xlsx");
    assert_eq!(SheetKind::sniff(&bytes), Some(SheetKind::Xlsx));

    let import = read_contacts(&bytes, SheetKind::Xlsx, &opts()).expect("an import");
    assert!(import.rejected.is_empty(), "{:?}", import.rejected);
    assert_eq!(import.columns, table.headers);
    let read: Vec<_> = import
        .contacts
        .iter()
        .map(|c| {
            (
                c.row,
                c.phone.as_str(),
                c.name.as_deref(),
                c.time_zone.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        read,
        [
            (
                2,
                "5491155550001",
                Some("María, \"la jefa\""),
                Some("America/Argentina/Buenos_Aires")
            ),
            (3, "525512345678", Some("José Ñúñez"), None),
            (4, "12015550123", Some("Short row"), None),
        ]
    );
    let first = &import.contacts[0].variables;
    assert_eq!(first["Monto"], "1500.5");
    assert_eq!(first["Llamado"], "2024-06-19 15:22:45", "a date-time cell");
    assert_eq!(first["Nota"], "dos\nlíneas");
    assert_eq!(import.contacts[1].variables["Monto"], "-3");
    assert_eq!(import.contacts[1].variables.len(), 1);
}

#[test]
fn xlsx_cells_keep_their_types() {
    let bytes = write_xlsx(&report(), "Campaign 2024/06").expect("an xlsx");
    let mut workbook = Xlsx::new(std::io::Cursor::new(bytes)).expect("opens");
    assert_eq!(workbook.sheet_names(), ["Campaign 2024_06"]);
    let range = workbook
        .worksheet_range("Campaign 2024_06")
        .expect("a sheet");
    assert_eq!(
        range.get_value((0, 0)),
        Some(&Data::String("Teléfono".into()))
    );
    assert_eq!(range.get_value((1, 3)), Some(&Data::Float(1500.5)));
    match range.get_value((1, 4)) {
        Some(Data::DateTime(dt)) => {
            assert_eq!(dt.to_ymd_hms_milli(), (2024, 6, 19, 15, 22, 45, 0))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(range.get_value((2, 4)), Some(&Data::Empty));
}

#[test]
fn xlsx_edge_tables() {
    let empty = write_xlsx(&Table::default(), "").expect("an xlsx");
    assert_eq!(
        read_contacts(&empty, SheetKind::Xlsx, &opts()).map(|_| ()),
        Err(SheetError::Empty)
    );
    let odd = Table {
        headers: vec!["phone".into(), "n".into()],
        rows: vec![vec![
            "2015550101".into(),
            Cell::Number(f64::NAN),
            Cell::Time(jiff::Timestamp::MIN),
            Cell::Text("=1+1".into()),
            Cell::Text("x".repeat(40_000)),
        ]],
    };
    let bytes = write_xlsx(&odd, "x").expect("an xlsx");
    let mut workbook = Xlsx::new(std::io::Cursor::new(bytes)).expect("opens");
    let range = workbook.worksheet_range("x").expect("a sheet");
    assert_eq!(range.get_value((1, 1)), Some(&Data::Empty), "NaN is empty");
    assert!(
        matches!(range.get_value((1, 2)), Some(Data::String(s)) if s.starts_with("-009999")),
        "a time Excel cannot show is text"
    );
    assert_eq!(
        range.get_value((1, 3)),
        Some(&Data::String("=1+1".into())),
        "text is never a formula"
    );
    assert!(matches!(range.get_value((1, 4)), Some(Data::String(s)) if s.len() == 32_767));

    let too_wide = Table {
        headers: vec![String::new(); 16_385],
        rows: Vec::new(),
    };
    assert!(matches!(
        write_xlsx(&too_wide, "x"),
        Err(SheetError::Write(_))
    ));
}

#[test]
fn csv_is_rfc4180_with_a_bom() {
    let table = report();
    let bytes = write_csv(&table);
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM first");
    let text = std::str::from_utf8(&bytes).expect("utf-8");
    assert!(text.contains("\r\n"), "CRLF line ends");
    assert!(
        text.contains("\"María, \"\"la jefa\"\"\""),
        "quotes doubled"
    );

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(&bytes[3..]);
    let headers: Vec<String> = reader
        .headers()
        .expect("headers")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(headers, table.headers);
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.expect("a record").iter().map(String::from).collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec![
                "+54 9 11 5555-0001",
                "María, \"la jefa\"",
                "America/Argentina/Buenos_Aires",
                "1500.5",
                "2024-06-19T15:22:45Z",
                "dos\nlíneas"
            ],
            vec!["+52 55 1234 5678", "José Ñúñez", "", "-3", "", ""],
            vec!["+1 201 555 0123", "Short row", "", "", "", ""],
        ],
        "every row as wide as the header"
    );
}

#[test]
fn csv_round_trip_through_read_contacts() {
    let bytes = write_csv(&report());
    let import = read_contacts(&bytes, SheetKind::Csv, &opts()).expect("an import");
    assert!(import.rejected.is_empty(), "{:?}", import.rejected);
    let phones: Vec<_> = import.contacts.iter().map(|c| c.phone.as_str()).collect();
    assert_eq!(phones, ["5491155550001", "525512345678", "12015550123"]);
    assert_eq!(import.contacts[0].variables["Nota"], "dos\nlíneas");
    assert_eq!(
        import.contacts[0].variables["Llamado"],
        "2024-06-19T15:22:45Z"
    );
    assert_eq!(import.contacts[1].row, 3, "the quoted line break is no row");
}

#[test]
fn csv_neutralises_formulas_but_not_numbers() {
    let table = Table {
        headers: vec!["name".into(), "phone".into()],
        rows: vec![vec![
            "=HYPERLINK(\"http://x\",\"y\")".into(),
            "+54 11 5555-0001".into(),
        ]],
    };
    let text = String::from_utf8(write_csv(&table)).expect("utf-8");
    assert!(
        text.contains("\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""),
        "{text}"
    );
    assert!(text.contains(",+54 11 5555-0001\r\n"), "{text}");
}

#[test]
fn csv_of_an_empty_table_is_just_the_bom() {
    assert_eq!(write_csv(&Table::default()), b"\xEF\xBB\xBF");
}
