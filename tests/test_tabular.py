"""name_origin.tabular: the batch upload read as spreadsheet programs write it. Every input is bytes
written here: legacy code pages, UTF-8 with and without BOM, UTF-16, Excel's sep= line, headers in
the app's languages, several columns, undecodable rows, and files that are not text at all."""

from __future__ import annotations

import codecs

import pytest

from name_origin import tabular
from name_origin.tabular import TableError, read_table

GERMAN_CP1252 = "Nachname;Vorname\r\nMüller;Hans\r\nLefèvre;Marc\r\n".encode("cp1252")


def test_cp1252_spreadsheet_file_reads_right():
    """The reported bug: read as UTF-8 with replacement it gave Nachname, M�ller, Lef�vre, all classified."""
    t = read_table(GERMAN_CP1252)
    assert (t.encoding, t.guessed, t.delimiter, t.header) == ("cp1252", True, ";", True)
    assert t.columns == ["Nachname", "Vorname"] and t.column == 0
    assert t.names == ["Müller", "Lefèvre"] and t.problems == ["", ""] and t.rows == [2, 3]
    assert "Windows-1252" in t.describe() and "CSV UTF-8" in t.describe()  # the guess is told, with the fix


@pytest.mark.parametrize(
    "text, encoding",
    [
        ("Nazwisko;Imię\r\nWiśniewski;Łukasz\r\nŻółkiewski;Stanisław\r\nKowalczyk;Paweł\r\n", "cp1250"),  # Polish
        ("Wiśniewski\r\nŻółkiewski\r\nKowalczyk\r\n", "cp1250"),  # no header: only the names tell
        ("Příjmení\r\nDvořák\r\nNovák\r\nČerný\r\n", "cp1250"),  # Czech: reads as letters in 1252 too
        ("Dvořák\r\n", "cp1250"),
        ("Фамилия;Имя\r\nИванов;Пётр\r\nСмирнов;Алексей\r\nКузнецова;Мария\r\n", "cp1251"),  # Russian
        ("Иванов\r\nСмирнов\r\nКузнецова\r\n", "cp1251"),
        ("Фамилия\nИванов\nСмирнов\n", "koi8_r"),
        ("Επώνυμο\nΠαπαδόπουλος\nΓεωργίου\n", "cp1253"),  # Greek
        ("Soyadı\nÖztürk\nŞahin\nYılmaz\n", "cp1254"),  # Turkish
        ("Pavardė\nKazlauskas\nŽukauskaitė\nJankūnas\n", "cp1257"),  # Lithuanian
        ("اسم العائلة\nحداد\nالخوري\n", "cp1256"),  # Arabic
        ("Name\rMüller\rLefèvre\rGonçalves\r", "mac_roman"),  # classic Mac: CR line ends
        ("Apellidos\nPeña\nMuñoz\nIbáñez\n", "cp1252"),
        ("Name\nGroß\nBäcker\nÖzdemir\n", "cp1252"),
        ("Müller\n", "cp1252"),
        ("O’Brien\nD’Amico\n", "cp1252"),  # Windows-1252's curly apostrophe
        ("Sobrenome,Nome\nGonçalves,João\nAraújo,Conceição\n", "latin_1"),  # Latin-1 reads the same as 1252
        ("苗字\n山田\n佐藤\n鈴木\n", "cp932"),  # Japanese Excel's Shift_JIS
        ("山田\n佐藤\n鈴木\n高橋\n", "cp932"),
        ("姓\n张\n王伟\n李娜\n", "gb18030"),  # Chinese Excel's GBK
        ("김민준\n이서연\n박지훈\n", "cp949"),  # Korean Excel's CP949
    ],
)
def test_legacy_code_pages_of_short_files(text, encoding):
    t = read_table(text.encode(encoding))
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    expected = [line.split(";")[0].split(",")[0] for line in lines[t.header :] if line]
    assert t.names == expected and t.guessed and not any(t.problems)
    if encoding != "latin_1":
        assert t.encoding == encoding
    else:
        assert t.encoding == "cp1252"


@pytest.mark.parametrize(
    "data, encoding",
    [
        ("Surname\nMüller\nNguyễn\n".encode(), "utf-8"),
        (codecs.BOM_UTF8 + "Surname\nMüller\nNguyễn\n".encode(), "utf-8-sig"),
        ("Surname\nMüller\nNguyễn\n".encode("utf-16"), "utf-16"),  # BOM in the machine's order
        (codecs.BOM_UTF16_LE + "Surname\nMüller\nNguyễn\n".encode("utf-16-le"), "utf-16"),
        (codecs.BOM_UTF16_BE + "Surname\nMüller\nNguyễn\n".encode("utf-16-be"), "utf-16"),
        (codecs.BOM_UTF32_LE + "Surname\nMüller\nNguyễn\n".encode("utf-32-le"), "utf-32"),
    ],
)
def test_unicode_files(data, encoding):
    t = read_table(data)
    assert (t.encoding, t.guessed, t.header, t.names, t.problems) == (
        encoding,
        False,
        True,
        ["Müller", "Nguyễn"],
        [""] * 2,
    )


def test_excel_unicode_text_is_utf16_tab_separated():
    text = "Vorname\tNachname\tOrt\r\n" + "Hans\tMüller\tKöln\r\n" + 'Anna\t"Lefèvre, Jr"\tParis\r\n'
    t = read_table(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert (t.encoding, t.delimiter, t.header, t.column) == ("utf-16", "\t", True, 1)
    assert t.names == ["Müller", "Lefèvre, Jr"] and t.examples == ["Hans", "Müller", "Köln"]


@pytest.mark.parametrize(
    "data, delimiter, names",
    [
        (b"sep=;\r\nName;Land\r\nM\xfcller;DE\r\nRossi;IT\r\n", ";", ["Müller", "Rossi"]),  # Excel, cp1252
        (b"sep=,\nRossi,IT\nKim,KR\n", ",", ["Rossi", "Kim"]),
        (b'"sep=|"\nSurname|Country\nRossi|IT\n', "|", ["Rossi"]),  # any separator it names
        (b"SEP=\t\nRossi\tIT\n", "\t", ["Rossi"]),
    ],
)
def test_excel_sep_line_is_honoured_not_classified(data, delimiter, names):
    t = read_table(data)
    assert t.sep_line and t.delimiter == delimiter and t.names == names
    assert "sep=" in t.describe()


@pytest.mark.parametrize(
    "text, delimiter, names",
    [
        ("Name,Country\nRossi,IT\nKim,KR\n", ",", ["Rossi", "Kim"]),
        ("Name;Country\nRossi;IT\nSmith, Jr;US\n", ";", ["Rossi", "Smith, Jr"]),  # commas in names
        ("Name\tCountry\nRossi\tIT\nKim\tKR\n", "\t", ["Rossi", "Kim"]),
        ("Rossi, IT\nKim, KR\n", ",", ["Rossi", "Kim"]),  # spaces after the comma
        ('"Smith, Jr",a\n"O\'Brien",b\n', ",", ["Smith, Jr", "O'Brien"]),
        ("Rossi\nSmith, Jr\nKim\nLee\n", "", ["Rossi", "Smith, Jr", "Kim", "Lee"]),  # one column, one stray comma
        ('"Smith, Jr"\nRossi\n', "", ["Smith, Jr", "Rossi"]),
    ],
)
def test_separators(text, delimiter, names):
    t = read_table(text.encode())
    assert t.delimiter == delimiter and t.names == names


@pytest.mark.parametrize(
    "cell",
    [
        "Surname", "LAST_NAME", "Last name", "Family Name", "lastname", "Nachname", "Familienname", "Apellido",
        "Apellidos", "nom", "Nom de famille", "NOM DE FAMILLE", "Cognome", "Achternaam", "Nazwisko", "Příjmení",
        "PRIJMENI", "Sobrenome", "Apelido", "Фамилия", "ФАМИЛИЯ", "Επώνυμο", "ΕΠΩΝΥΜΟ", "επωνυμο", "성", "姓",
        "苗字", "名字", "اسم العائلة", "العائلة", "Họ", "HỌ", "Sloinne", " surname: ", "Surname *",
    ],
)  # fmt: skip
def test_surname_header_words(cell):
    assert tabular.header_kind(cell) == "surname"
    t = read_table(f"{cell}\nRossi\n".encode())
    assert t.header and t.names == ["Rossi"]


@pytest.mark.parametrize("cell, kind", [("Name", "name"), ("names", "name"), ("Nome", "name"), ("Vorname", "other"),
                                        ("Prénom", "other"), ("First name", "other"), ("Ho", None), ("Müller", None),
                                        ("Nguyen", None), ("", None)])  # fmt: skip
def test_other_header_cells(cell, kind):
    """Generic and given-name headers mark a header row; "Ho" is a surname, not Vietnamese "họ"."""
    assert tabular.header_kind(cell) == kind


def test_header_override():
    data = b"Rossi\nKim\n"
    assert read_table(data).names == ["Rossi", "Kim"]
    assert read_table(data, header=True).names == ["Kim"] and read_table(data, header=True).columns == ["Rossi"]
    data = b"Surname\nKim\n"
    assert read_table(data, header=False).names == ["Surname", "Kim"]
    assert read_table(data, header=False).columns == ["column 1"]


def test_column_choice():
    data = "Vorname;Nachname;Stadt\nHans;Müller;Köln\nMarc;Lefèvre;Paris\n".encode()
    t = read_table(data)
    assert t.column == 1 and t.names == ["Müller", "Lefèvre"]  # the header that names a surname
    assert read_table(data, column=2).names == ["Köln", "Paris"]
    assert read_table(data, column="stadt").names == ["Köln", "Paris"]  # a header's text, any case
    assert read_table(data, column="0").names == ["Hans", "Marc"]
    assert read_table(b"id,name,country\n1,Rossi,IT\n").column == 1  # a generic "name" when no surname
    assert read_table(b"first name,last name\nMario,Rossi\n").names == ["Rossi"]
    assert read_table(b"1,Rossi,IT\n2,Kim,KR\n").column == 0  # no header: the first
    with pytest.raises(TableError, match="no column 4: the file has 3"):
        read_table(data, column=3)
    with pytest.raises(TableError, match="no column 'Land'"):
        read_table(data, column="Land")


def test_rows_stay_aligned_with_reasons():
    data = "Name;x\nMüller;1\n\n;2\nRossi;3\nKim\n;;\n\n".encode()
    t = read_table(data)
    assert t.names == ["Müller", "", "", "Rossi", "Kim"] and t.rows == [2, 3, 4, 5, 6]
    assert [bool(p) for p in t.problems] == [False, True, True, False, False]
    assert t.problems[1].startswith("Empty cell")


def test_undecodable_bytes_are_never_names():
    """Mostly UTF-8 with one Windows-1252 row: read as UTF-8, the bad row keeps U+FFFD and a reason."""
    t = read_table(b"Name\nM\xc3\xbcller\nLef\xe8vre\nRossi\n")
    assert t.encoding == "utf-8" and t.names == ["Müller", "Lef\ufffdvre", "Rossi"]
    assert t.problems[0] == t.problems[2] == "" and "could not be decoded" in t.problems[1]
    assert "not valid UTF-8" in t.describe()
    t = read_table("Name\nM\ufffdller\n".encode())  # a U+FFFD already in valid UTF-8
    assert "could not be decoded" in t.problems[0]
    t = read_table(codecs.BOM_UTF16_LE + "Name\nMüller\n".encode("utf-16-le") + b"\x00")  # a byte short
    assert t.names[0] == "Müller" and "could not be decoded" in t.problems[-1]


def test_garbled_names_in_a_guessed_file_are_held_back():
    """Rows from two code pages: ISO-8859-2 reads them all; a control character is no name."""
    t = read_table("Name\nKowalski\nMüller\n".encode("cp1252") + "Łukasz\n".encode("cp1250") + b"A\x81b\n")
    assert (t.encoding, t.names[:3], t.problems[:3]) == ("iso8859_2", ["Kowalski", "Müller", "Łukasz"], [""] * 3)
    assert t.problems[3] == "Holds control characters."
    assert tabular.name_problem("£ukasz", "Windows-1252").startswith("Looks garbled")  # in a guessed file
    assert tabular.name_problem("£ukasz") == ""  # a UTF-8 file says what it means


def test_pasted_text():
    t = tabular.from_text("Rossi\n\n  Müller \nM\ufffdller\n")
    assert t.names == ["Rossi", "Müller", "M\ufffdller"] and t.rows == [1, 3, 4]
    assert t.problems[:2] == ["", ""] and "could not be decoded" in t.problems[2]
    assert tabular.from_text(None).names == []


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b" \r\n\r\n", "empty"),
        (codecs.BOM_UTF8, "empty"),
        (b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 8, r"Excel workbook \(\.xlsx\)"),  # .xlsx renamed .csv
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), r"old Excel workbook \(\.xls\)"),
        (b"%PDF-1.7\n" + bytes(range(256)), "a PDF"),
        (bytes(range(256)) * 4, "does not look like a CSV"),
        (bytes((i * 7919) % 128 + 128 for i in range(4000)), "encoding|does not look like"),  # high bytes only
        (b"Rossi\n" + b"\x01\x02\x03\x04" * 100, "does not look like a CSV"),
        (b'"Rossi\n' + b"x" * 140_000, "quote mark left open"),
    ],
)
def test_unreadable_files_get_one_message(data, message):
    with pytest.raises(TableError, match=message) as err:
        read_table(data)
    assert "Traceback" not in str(err.value) and "\n" not in str(err.value)


def test_size_limit(tmp_path):
    big = tmp_path / "big.csv"
    big.write_bytes(b"Rossi\n" * (tabular.MAX_BYTES // 6 + 1))
    with pytest.raises(TableError, match="over the 5 MB limit"):
        tabular.read_file(big)
    with pytest.raises(TableError, match="could not be opened"):
        tabular.read_file(tmp_path / "gone.csv")


def test_garbled_words():
    fine = ["Müller", "Dvořák", "O’Brien", "Żółkiewski", "Иванов", "П", "山田", "ÖZTÜRK", "€", "«Łódź»", "Ås"]
    assert not any(map(tabular.garbled, fine))
    assert all(map(tabular.garbled, ["M³ller", "£ukasz", "MŸller", "Mьller", "Dvoøák", "Нх", "ÕÔ", "M\ufffdller"]))
